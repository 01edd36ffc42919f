"""What a bot holds by our books and by its venue: the one read every reconcile compares and every exit from LIVE
records (oversight.reconcile judges the difference; execution.orders.live_exit records what a departing bot left).

A sim venue answers from its own fills against the bot's paper book; a registered live venue from its account
against the live book (execution.orders.live_positions). Any other venue has no answer: refused with
``RECONCILE_SOURCE_MISSING``, never reported flat.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.books import Book, is_sim_venue
from controlplane.errors import ControlPlaneError, ErrorCode
from execution.models import StrategyPosition
from execution.orders.live_positions import booked_positions, crypto_positions, venue_positions
from execution.orders.paper_venue import SimVenue
from integrations.venue_symbols import CCXT_MARKET_TYPES
from integrations.venues.registry import is_live_venue


@dataclass(frozen=True)
class PositionSnapshot:
    """Signed quantities per instrument: what our books say and what the venue says."""

    internal: dict[str, float]
    venue: dict[str, float]


def position_snapshot(*, bot) -> PositionSnapshot:
    """Our book and the venue's answer for ``bot`` at ``bot.venue``. Raises ControlPlaneError when the venue
    cannot answer or is not one we can read."""
    if is_sim_venue(bot.venue):
        return _sim_snapshot(bot)
    if is_live_venue(bot.venue):
        return _live_snapshot(bot)
    raise ControlPlaneError(
        ErrorCode.RECONCILE_SOURCE_MISSING,
        f"Venue {bot.venue!r} has no position source; bot {bot.name} was not compared.",
        details={"venue": bot.venue},
    )


def _sim_snapshot(bot) -> PositionSnapshot:
    """The bot's paper book (StrategyPosition) against the sim venue's fills."""
    internal = {
        symbol: float(quantity)
        for symbol, quantity in StrategyPosition.objects.filter(bot=bot, book=Book.PAPER).values_list(
            "instrument__symbol", "quantity"
        )
        if quantity != 0
    }
    venue = {
        symbol: float(quantity)
        for symbol, quantity in SimVenue(bot.venue).positions(bot_id=bot.id).items()
        if quantity != 0
    }
    return PositionSnapshot(internal=internal, venue=venue)


def _live_snapshot(bot) -> PositionSnapshot:
    """A live account is shared by the tenant's bots on the venue: futures venues compare the sum of their books,
    crypto venues attribute the account to each bot (execution.orders.live_positions)."""
    if bot.venue in CCXT_MARKET_TYPES:
        internal, venue = crypto_positions(bot)
    else:
        from bots.models import Bot

        internal = booked_positions(bot_ids=Bot.objects.filter(venue=bot.venue).values_list("id", flat=True))
        venue = venue_positions(bot)
    return PositionSnapshot(
        internal={s: float(q) for s, q in internal.items() if q}, venue={s: float(q) for s, q in venue.items() if q}
    )
