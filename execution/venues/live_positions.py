"""Reconcile source for live venues: our books against the venue account's positions.

A live account is shared by every bot of the tenant on that venue, so the internal side is the sum of those
bots' live-book positions (paper positions are never a fact about the venue, whatever the bot's stage); a venue
that cannot answer raises (the reconcile fails closed, it never reports flat).
Symbols are compared as they are: the OMS sends the venue's contract symbol (see README, live venues).
"""

from __future__ import annotations

from controlplane.errors import ControlPlaneError
from execution.venues.base import VenueError
from execution.venues.registry import adapter_for


def live_position_source(*, bot):
    from bots.hooks import PositionSnapshot
    from controlplane.books import Book
    from execution.models import StrategyPosition

    internal: dict[str, float] = {}
    for symbol, quantity in StrategyPosition.objects.filter(bot__venue=bot.venue, book=Book.LIVE).values_list(
            "instrument__symbol", "quantity"):
        internal[symbol] = internal.get(symbol, 0.0) + float(quantity)
    try:
        venue = adapter_for(bot.venue, bot_id=bot.id).positions()
    except VenueError as error:
        raise ControlPlaneError(error.code, f"{bot.venue}: {error}") from error
    return PositionSnapshot(internal={s: q for s, q in internal.items() if q},
                            venue={s: float(q) for s, q in venue.items() if q})
