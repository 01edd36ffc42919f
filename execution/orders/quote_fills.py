"""The sim twins of the crypto venues (``sim-kraken``...: ``SIM_VENUE_FILL_MODELS`` entries ``{"quotes": venue}``;
``sim-hyperliquid`` fills on the perpetual's book, its swap quotes):
paper trading for the arbitrage scanners on the venues' recorded quotes instead of bars (issue 18).

``match_quote_orders`` fills their working orders against the latest usable quote of their venue
(``execution.fill_model.simulate_quote_fill``); ``paper_funds_short`` is the refusal a twin gives, as the venue
would, to an order its paper holdings cannot pay for (``SimVenue.place_order`` asks it). The sim venue's bar
matching (``paper_venue``) never touches the twins' orders.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from execution.fill_model import FillQuote, OrderType, Side, SimOrder, simulate_quote_fill
from execution.marketdata.fees import taker_fee
from execution.marketdata.quote_selectors import usable_quotes
from execution.models import Instrument, Order
from integrations.venue_symbols import CCXT_MARKET_TYPES
from integrations.venues.base import VenueOrderRequest


def quote_sim_venues() -> dict[str, str]:
    """The sim venues that fill against a spot venue's recorded quotes: sim venue -> the quoted venue."""
    return {venue: config["quotes"] for venue, config in settings.SIM_VENUE_FILL_MODELS.items() if config.get("quotes")}


def match_quote_orders(*, at: datetime, replay: bool = False) -> int:
    """Fill the current tenant's working orders at the quote-filled sim venues against the latest usable quote
    of their venue at ``at`` (``usable_quotes``: a stale or missing quote fills nothing), through
    ``execution.fill_model.simulate_quote_fill``. Only orders sent before ``at`` meet a quote, and each quote at
    most once (``last_matched_bar_ts`` holds the quote's receipt time), so the rest of a partly filled order waits
    for a new quote. A replay (``replay``) fills only replay intents' orders and a live scan only the others, so
    the two timelines never fill each other's orders. Returns the number of fills recorded."""
    from execution.orders import booking, writer

    twins = quote_sim_venues()
    orders = list(
        Order.objects.filter(
            venue__in=list(twins), status__in=(Order.Status.WORKING, Order.Status.PARTIALLY_FILLED), not_before__lt=at
        )
        .filter(Q(intent__source="replay") if replay else ~Q(intent__source="replay"))
        .select_related("instrument")
        .order_by("id")
    )
    if not orders:
        return 0
    quotes = {}
    for market_type in sorted({CCXT_MARKET_TYPES.get(twins[o.venue], "spot") for o in orders}):  # a perp's twin: swap
        view = usable_quotes(
            symbols=sorted({o.instrument.symbol for o in orders}),
            venues=sorted({twins[o.venue] for o in orders}),
            market_type=market_type,
            as_of=at,
        )
        quotes |= {(q.symbol, q.venue): q for q in view.usable}
    recorded = 0
    with writer.oms_writes():
        for order in orders:
            quote = quotes.get((order.instrument.symbol, twins[order.venue]))
            if quote is None or (order.last_matched_bar_ts and quote.received_at <= order.last_matched_bar_ts):
                continue
            fee_rate, _ = taker_fee(twins[order.venue])
            fill = simulate_quote_fill(
                SimOrder(Side(order.side), order.remaining, OrderType(order.order_type), order.limit_price),
                FillQuote(quote.bid, quote.ask, quote.bid_size, quote.ask_size),
                fee_rate=fee_rate if fee_rate is not None else Decimal(0),
                multiplier=order.instrument.multiplier,
            )
            Order.objects.filter(pk=order.pk).update(last_matched_bar_ts=quote.received_at)
            if fill is not None:
                booking.record_fill(
                    order=order,
                    venue_fill_id=f"{order.client_order_id}@{quote.received_at.isoformat()}",
                    quantity=fill.quantity,
                    price=fill.price,
                    fee=fill.fee if fee_rate is not None else None,
                    slippage=fill.slippage,
                    reference_price=fill.reference_price,
                    ts=at,
                )
                recorded += 1
    return recorded


def paper_funds_short(venue: str, request: VenueOrderRequest) -> str:
    """Why a quote-filled sim venue refuses the order as a spot venue would (insufficient funds), or "": a sell
    beyond the paper book's holding of the asset there, a buy beyond its quote currency at the order's price."""
    quoted_venue = settings.SIM_VENUE_FILL_MODELS.get(venue, {}).get("quotes")
    if not quoted_venue:
        return ""
    from controlplane.books import Book
    from execution.models import VenueInventory

    held = dict(VenueInventory.objects.filter(book=Book.PAPER, venue=venue).values_list("asset", "quantity"))
    # A perpetual's twin (sim-hyperliquid) holds no base to sell: either side is collateralised 1x in its
    # settlement currency (the cash check below), as a venue margining without leverage would.
    swap = CCXT_MARKET_TYPES.get(quoted_venue) == "swap"
    if request.side == "sell" and not swap:
        have = held.get(request.symbol, Decimal(0))
        return (
            f"insufficient funds: {venue} holds {have} {request.symbol}, sell of {request.quantity}"
            if have < request.quantity
            else ""
        )
    cash_asset = (request.venue_market or {}).get("quote") or (
        (Instrument.objects.get(symbol=request.symbol).venue_symbols or {}).get(quoted_venue, {}).get("quote", "")
    )
    price = request.limit_price or request.reference_price
    if not cash_asset or price is None:
        return f"{venue} cannot value a {request.side} of {request.symbol}: no quote currency or price"
    need, have = request.quantity * price, held.get(cash_asset, Decimal(0))
    return f"insufficient funds: {venue} holds {have} {cash_asset}, {request.side} needs {need}" if have < need else ""
