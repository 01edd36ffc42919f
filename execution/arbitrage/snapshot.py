"""What a scan reads, as plain data for the pure ``scan``: the market (usable quotes, why the others are not, the
fee schedule) and the inventory of the bot's book at each venue."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from bots.models import Stage
from bots.strategies import Inventory, MarketSnapshot, MissingQuote, QuoteData
from controlplane.books import Book
from execution.marketdata.fees import fee_schedule
from execution.marketdata.quote_selectors import usable_quotes
from execution.models import VenueInventory


def paper_venue(venue: str) -> str:
    """The sim twin of a spot venue: paper orders go there and fill against that venue's recorded quotes."""
    return f"{settings.ARB_PAPER_VENUE_PREFIX}{venue}"


def market_venue(order_venue: str) -> str:
    """The venue whose quotes an order venue trades on (the twin's venue for paper, itself for live)."""
    prefix = settings.ARB_PAPER_VENUE_PREFIX
    return order_venue[len(prefix) :] if order_venue.startswith(prefix) else order_venue


def order_venue(venue: str, *, stage: str, replay: bool = False) -> str:
    """Where a leg priced at ``venue`` is sent: the venue itself only for a LIVE bot's live scan."""
    return venue if stage == Stage.LIVE and not replay else paper_venue(venue)


def book_for(stage: str, *, replay: bool = False) -> Book:
    return Book.LIVE if stage == Stage.LIVE and not replay else Book.PAPER


def spot_snapshot(*, symbols: Iterable[str], as_of: datetime) -> MarketSnapshot:
    """The usable spot quotes of ``symbols`` at ``as_of`` (``usable_quotes``: fail closed, with why each missing
    one is missing), each tagged with the currency its market is priced in, and the fee schedule of the venues."""
    symbols = sorted(set(symbols))
    view = usable_quotes(symbols=symbols, as_of=as_of)
    quote_assets = view.quote_assets
    quotes = tuple(
        QuoteData(
            symbol=q.symbol,
            venue=q.venue,
            quote_asset=quote_assets.get((q.symbol, q.venue), ""),
            bid=q.bid,
            ask=q.ask,
            bid_size=q.bid_size,
            ask_size=q.ask_size,
            received_at=q.received_at,
            age_ms=q.age_ms,
        )
        for q in view.usable
    )
    missing = tuple(MissingQuote(m.symbol, m.venue, str(m.reason), m.detail, m.age_ms) for m in view.unusable)
    fees, sources = fee_schedule({q.venue for q in view.usable} | {m.venue for m in view.unusable})
    return MarketSnapshot(as_of=as_of, quotes=quotes, missing=missing, taker_fees=fees, fee_sources=sources)


def book_inventory(book: str) -> Inventory:
    """The current tenant's holdings in ``book`` by (market venue, asset): what the OMS booked from fills (the
    instrument's symbol for the base) and the quote currencies funded or booked there."""
    holdings: dict[tuple[str, str], Decimal] = {}
    for venue, asset, quantity in VenueInventory.objects.filter(book=book).values_list("venue", "asset", "quantity"):
        key = (market_venue(venue), asset)
        holdings[key] = holdings.get(key, Decimal(0)) + quantity
    return Inventory(holdings)
