from django.urls import path

from execution.arbitrage import api as arbitrage_api
from execution.arbitrage import funding_api
from execution.marketdata import api as marketdata_api
from execution.orders import api as orders_api
from execution.risk import api as risk_api
from execution.tick import api as tick_api

urlpatterns = [
    path("market-hours", marketdata_api.MarketHoursView.as_view(), name="market-hours"),
    path("bots/<int:pk>/traces", tick_api.BotTracesView.as_view(), name="bot-traces"),
    path("bots/<int:pk>/why-not", tick_api.WhyNotView.as_view(), name="bot-why-not"),
    path("intents", orders_api.IntentListCreateView.as_view(), name="intents"),
    path("intents/<int:pk>", orders_api.IntentDetailView.as_view(), name="intent-detail"),
    path("intents/<int:pk>/cancel", orders_api.IntentCancelView.as_view(), name="intent-cancel"),
    path("bots/<int:bot_id>/pnl", orders_api.BotPnlView.as_view(), name="bot-pnl"),
    path("bots/<int:pk>/arb-pnl", arbitrage_api.BotArbPnlView.as_view(), name="bot-arb-pnl"),
    path("bots/<int:pk>/arb-spreads", arbitrage_api.BotArbSpreadsView.as_view(), name="bot-arb-spreads"),
    path("bots/<int:pk>/basis-pnl", funding_api.BotBasisPnlView.as_view(), name="bot-basis-pnl"),
    path("bots/<int:pk>/trading-state", risk_api.BotTradingStateView.as_view(), name="bot-trading-state"),
    path("tenant/trading-state", risk_api.TenantTradingStateView.as_view(), name="tenant-trading-state"),
    path("tenant/risk-limits", risk_api.TenantRiskLimitsView.as_view(), name="tenant-risk-limits"),
    path("risk/incidents", risk_api.RiskIncidentListView.as_view(), name="risk-incidents"),
    path("risk/incidents/<int:pk>/resolve", risk_api.RiskIncidentResolveView.as_view(), name="risk-incident-resolve"),
]
