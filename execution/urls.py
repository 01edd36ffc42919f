from django.urls import path

from execution import api, intents_api

urlpatterns = [
    path("market-hours", api.MarketHoursView.as_view(), name="market-hours"),
    path("bots/<int:pk>/traces", api.BotTracesView.as_view(), name="bot-traces"),
    path("bots/<int:pk>/why-not", api.WhyNotView.as_view(), name="bot-why-not"),
    path("intents", intents_api.IntentListCreateView.as_view(), name="intents"),
    path("intents/<int:pk>", intents_api.IntentDetailView.as_view(), name="intent-detail"),
    path("intents/<int:pk>/cancel", intents_api.IntentCancelView.as_view(), name="intent-cancel"),
    path("bots/<int:bot_id>/pnl", intents_api.BotPnlView.as_view(), name="bot-pnl"),
]
