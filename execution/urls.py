from django.urls import path

from execution import api

urlpatterns = [
    path("market-hours", api.MarketHoursView.as_view(), name="market-hours"),
    path("bots/<int:pk>/traces", api.BotTracesView.as_view(), name="bot-traces"),
    path("bots/<int:pk>/why-not", api.WhyNotView.as_view(), name="bot-why-not"),
]
