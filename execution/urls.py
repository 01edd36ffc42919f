from django.urls import path

from execution import api

urlpatterns = [
    path("market-hours", api.MarketHoursView.as_view(), name="market-hours"),
]
