"""The bot page's arbitrage panel (scanner bots only): what each settled spot arbitrage intent made against what its
scan expected (``arb_pnl``), and the latest priced pairs (``arb_spreads``). The sum of realized edges is unknown,
not a number, as soon as one settled intent's fees are unknown."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from bots.models import Bot
from bots.strategies import get_strategy, is_quote_strategy
from execution.arbitrage.selectors import bot_arb_pnl, bot_arb_spreads
from observatory.links import trace_url

ARB_ROWS_SHOWN = 20


def is_scanner(bot: Bot) -> bool:
    try:
        strategy = get_strategy(bot.strategy)
    except KeyError:
        return False
    # Spot scanners: a funding scanner's page has its basis PnL panel instead (observatory.funding_panel).
    return is_quote_strategy(strategy) and strategy.market_kind == "spot"


def arb_panel(bot: Bot) -> dict:
    settled = list(bot_arb_pnl(bot_id=bot.id)[:ARB_ROWS_SHOWN])
    spreads = list(bot_arb_spreads(bot_id=bot.id)[:ARB_ROWS_SHOWN])
    realized = [row.realized_edge for row in settled]
    return {
        "scanner": True,
        "shown": ARB_ROWS_SHOWN,
        "pnl": [
            {"row": row, "intent_url": reverse("admin:execution_tradeintent_change", args=[row.intent_id])}
            for row in settled
        ],
        "realized_total": None if any(r is None for r in realized) else sum(realized, Decimal(0)),
        "spreads": [{"s": s, "trace_url": trace_url(s.trace_id)} for s in spreads],
        "api_pnl": reverse("bot-arb-pnl", args=[bot.id]),
        "api_spreads": reverse("bot-arb-spreads", args=[bot.id]),
    }
