"""The bot page's basis PnL panel: a funding scanner's positions from the ``basis_pnl`` view (entry basis, funding
received, exit basis, fees, total), newest first. Shown for bots whose strategy is a funding scanner (its
``market_kind``); an open position's exit and total are shown as open, not as zero."""

from __future__ import annotations

from bots.models import Bot
from bots.strategies import UnknownStrategy, get_strategy
from execution.funding_models import BasisPnl

POSITIONS_SHOWN = 20


def is_funding_bot(bot: Bot) -> bool:
    try:
        return getattr(get_strategy(bot.strategy), "market_kind", None) == "funding"
    except UnknownStrategy:
        return False


def basis_pnl_panel(bot: Bot) -> dict:
    rows = list(BasisPnl.objects.filter(bot_id=bot.pk).order_by("-position_id")[:POSITIONS_SHOWN])
    return {"applies": True, "rows": rows, "shown": POSITIONS_SHOWN, "api_url": f"/api/bots/{bot.pk}/basis-pnl"}
