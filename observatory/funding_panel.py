"""The bot page's basis PnL panel: a funding scanner's positions from the ``basis_pnl`` view (entry basis, funding
received, exit basis, fees, total), newest first. Shown for funding scanners and for any bot that has a funding
position; an open position's exit and total are shown as open, not as zero."""

from __future__ import annotations

from bots.models import Bot
from execution.funding_models import BasisPnl

POSITIONS_SHOWN = 20
FUNDING_STRATEGIES = ("funding_arbitrage",)


def basis_pnl_panel(bot: Bot) -> dict:
    rows = list(BasisPnl.objects.filter(bot_id=bot.pk).order_by("-position_id")[:POSITIONS_SHOWN])
    return {
        "applies": bot.strategy in FUNDING_STRATEGIES or bool(rows),
        "rows": rows,
        "shown": POSITIONS_SHOWN,
        "api_url": f"/api/bots/{bot.pk}/basis-pnl",
    }
