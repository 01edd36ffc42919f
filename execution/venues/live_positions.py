"""Reconcile source for live venues: our books against the venue account's positions.

A live account is shared by every bot of the tenant on that venue, and only live books are compared (paper
positions are never a fact about the venue, whatever the bot's stage). Futures venues (Tradovate, Ironbeam)
answer positions per contract, reported back under our root: the internal side is the sum of those bots'
positions, per instrument. Crypto venues answer in their own terms, translated through
``Instrument.venue_symbols``:

- **Spot** (Coinbase, Kraken, Binance.US) holds currencies, not instruments: ``{"BTC": 1, "USD": 5000}`` for a
  book of ``{"BTC-USD": 1}``. Each of the bot's instruments is compared by its base asset: the venue's balance of
  it, less what the tenant's other bots hold of it (the venue inventory, which the OMS adds every fill at that
  venue to, minus this bot's own book), is this bot's part. The quote asset (USD) is not compared: it is cash,
  moved by every fill's notional and fee, deposits, withdrawals and whatever the owner does with the account,
  and our books keep positions and PnL, not a cash ledger, so no number of ours could match it. Currencies no
  instrument of the bot has as its base are the owner's, not a difference.
- **Hyperliquid** holds signed perpetual positions under ccxt's symbol (``BTC/USDC:USDC``), mapped back to our
  instrument and attributed the same way; a position in a market no instrument of ours maps is reported under
  the venue's symbol (an unmanaged leveraged position is a difference, never ignored).

A venue that cannot answer raises (the reconcile fails closed, it never reports flat); an instrument with no
mapping at the venue is refused ``INSTRUMENT_NOT_MAPPED`` (its balance cannot be told apart from another's).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from controlplane.errors import ControlPlaneError
from execution.venues.routing import adapter_for
from integrations.venue_symbols import CCXT_MARKET_TYPES, mapped_symbol
from integrations.venues.base import VenueError


def booked_positions(*, bot_ids: Iterable[int]) -> dict[str, Decimal]:
    """What our books say the bots hold, per instrument symbol (summed over the bots): the one read of the
    bots' positions every live reconcile compares with the venue: their live book only."""
    from controlplane.books import Book
    from execution.models import StrategyPosition

    booked: dict[str, Decimal] = {}
    for symbol, quantity in StrategyPosition.objects.filter(bot_id__in=list(bot_ids), book=Book.LIVE).values_list(
        "instrument__symbol", "quantity"
    ):
        booked[symbol] = booked.get(symbol, Decimal(0)) + quantity
    return booked


def venue_inventory(*, venue: str) -> dict[str, Decimal]:
    """What the tenant holds at ``venue`` per instrument, as the OMS added its fills there (its live book)."""
    from controlplane.books import Book
    from execution.models import VenueInventory

    return {
        asset: quantity
        for asset, quantity in VenueInventory.objects.filter(venue=venue, book=Book.LIVE).values_list(
            "asset", "quantity"
        )
    }


def _venue_positions(bot) -> dict[str, Decimal]:
    try:
        return adapter_for(bot.venue, bot_id=bot.id).positions()
    except VenueError as error:
        raise ControlPlaneError(error.code, f"{bot.venue}: {error}") from error


def live_position_source(*, bot):
    from bots.hooks import PositionSnapshot

    if bot.venue in CCXT_MARKET_TYPES:
        internal, venue = crypto_positions(bot)
    else:
        from bots.models import Bot

        internal = booked_positions(bot_ids=Bot.objects.filter(venue=bot.venue).values_list("id", flat=True))
        venue = _venue_positions(bot)
    return PositionSnapshot(
        internal={s: float(q) for s, q in internal.items() if q}, venue={s: float(q) for s, q in venue.items() if q}
    )


def crypto_positions(bot) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(the bot's book, its part of the venue's answer) per our instrument symbol; see the module docstring."""
    from execution.models import Instrument

    own = booked_positions(bot_ids=[bot.id])
    symbols = sorted(set(bot.instruments or []) | {s for s, q in own.items() if q})
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    mapped_here = {
        i.symbol: mapped_symbol(i, bot.venue) for i in Instrument.objects.filter(venue_symbols__has_key=bot.venue)
    }
    for symbol in symbols:  # refused, never guessed: an unmapped instrument's balance is nobody's
        if symbol in instruments and symbol not in mapped_here:
            mapped_symbol(instruments[symbol], bot.venue)
    # The key each instrument is compared under: its base asset (spot) or its own market (perpetuals).
    spot = CCXT_MARKET_TYPES[bot.venue] == "spot"
    key_of = {s: (m.base if spot else m.symbol) for s, m in mapped_here.items()}
    inventory = venue_inventory(venue=bot.venue)
    answer = _venue_positions(bot)

    def total(book: dict[str, Decimal], key: str) -> Decimal:
        return sum((q for s, q in book.items() if key_of.get(s) == key), Decimal(0))

    internal: dict[str, Decimal] = {}
    venue: dict[str, Decimal] = {}
    keys = sorted({key_of[s] for s in symbols if s in key_of})
    for key in keys:
        # One bot trading two instruments of one base (BTC-USD, BTC-USDT) holds one balance: compared once,
        # under the first of them (a resolution then books the difference there).
        reported_as = min(s for s in symbols if key_of.get(s) == key)
        own_quantity = total(own, key)
        others = total(inventory, key) - own_quantity
        internal[reported_as] = own_quantity
        venue[reported_as] = answer.get(key, Decimal(0)) - others
    if not spot:
        symbol_of = {m.symbol: s for s, m in mapped_here.items()}
        for market, quantity in sorted(answer.items()):
            if market in keys or not quantity:
                continue
            ours = symbol_of.get(market)
            unattributed = quantity - (inventory.get(ours, Decimal(0)) if ours else Decimal(0))
            if unattributed:
                venue[ours or market] = unattributed
    return internal, venue
