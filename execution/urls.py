from django.urls import path

from execution import api, intents_api, risk_api

urlpatterns = [
    path("market-hours", api.MarketHoursView.as_view(), name="market-hours"),
    path("bots/<int:pk>/traces", api.BotTracesView.as_view(), name="bot-traces"),
    path("bots/<int:pk>/why-not", api.WhyNotView.as_view(), name="bot-why-not"),
    path("intents", intents_api.IntentListCreateView.as_view(), name="intents"),
    path("intents/<int:pk>", intents_api.IntentDetailView.as_view(), name="intent-detail"),
    path("intents/<int:pk>/cancel", intents_api.IntentCancelView.as_view(), name="intent-cancel"),
    path("bots/<int:bot_id>/pnl", intents_api.BotPnlView.as_view(), name="bot-pnl"),
    path("bots/<int:pk>/trading-state", risk_api.BotTradingStateView.as_view(), name="bot-trading-state"),
    path("tenant/trading-state", risk_api.TenantTradingStateView.as_view(), name="tenant-trading-state"),
    path("risk/incidents", risk_api.RiskIncidentListView.as_view(), name="risk-incidents"),
    path("risk/incidents/<int:pk>/resolve", risk_api.RiskIncidentResolveView.as_view(), name="risk-incident-resolve"),
]
