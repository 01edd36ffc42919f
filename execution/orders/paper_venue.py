"""The sim venue: paper trading on real bars, speaking the same adapter interface as live venues.

Its order book is our own ``Order`` table: a placed order rests WORKING and fills only when
:func:`match_working_orders` is called for a stored bar (by ``bars_ingest`` for every bar it stores, through
:func:`match_stored_bars`, and by the tick for the bar it decides on), through ``execution.fill_model.simulate_fill``
(the backtest engine calls the same function, so paper and backtest fill alike). No bar, no fill; never an invented price. Fill
models are configured per sim venue in ``settings.SIM_VENUE_FILL_MODELS``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q, Sum

from bots.timeframes import timeframe_delta
from controlplane import tenancy
from controlplane.selectors import all_tenant_ids
from execution.fill_model import FillAt, FillBar, FillModel, OrderType, Side, SimOrder, simulate_fill
from execution.models import Bar, Fill, Instrument, Order
from execution.orders.quote_fills import paper_funds_short
from integrations.venues.base import VenueFill, VenueOrderAck, VenueOrderRequest, VenueOrderStatus

logger = logging.getLogger(__name__)


def fill_model(venue: str) -> FillModel:
    return FillModel.from_config(settings.SIM_VENUE_FILL_MODELS.get(venue))


class SimVenue:
    """Stateless: everything it knows is in the orders and fills the OMS recorded for the current tenant."""

    def __init__(self, name: str = "sim"):
        self.name = name

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck:
        return self.place_orders([request])[0]

    def place_orders(self, requests: Sequence[VenueOrderRequest]) -> list[VenueOrderAck]:
        """:meth:`place_order` of each request, answered in the same order, with their instruments looked up in one
        query: the OMS sends a batch's sim orders at once (``execution.orders.sending.place_all``), and a lookup per
        order was a transaction of its own (BEGIN, the tenant context, SELECT, COMMIT), the batch's costliest step.
        A request that names its instrument's row (``instrument_id``: the OMS read the instrument with the order, and
        the order's foreign key keeps the row) is known without a lookup, so the OMS's batches cost none (four round
        trips a batch, in a transaction of its own); only the symbols of requests without one are looked up."""
        unread = {r.symbol for r in requests if r.instrument_id is None}
        known = set(Instrument.objects.filter(symbol__in=unread).values_list("symbol", flat=True)) if unread else set()
        return [
            self._answer(request, known=request.instrument_id is not None or request.symbol in known)
            for request in requests
        ]

    def _answer(self, request: VenueOrderRequest, *, known: bool) -> VenueOrderAck:
        if not known:
            return VenueOrderAck(
                venue_order_id="",
                client_order_id=request.client_order_id,
                status=VenueOrderStatus.REJECTED,
                reason=f"unknown instrument {request.symbol}",
            )
        short = paper_funds_short(self.name, request)  # the quote-filled twins only (execution.orders.quote_fills)
        if short:
            return VenueOrderAck(
                venue_order_id="",
                client_order_id=request.client_order_id,
                status=VenueOrderStatus.REJECTED,
                reason=short,
            )
        return VenueOrderAck(
            venue_order_id=f"sim-{request.client_order_id}",
            client_order_id=request.client_order_id,
            status=VenueOrderStatus.WORKING,
        )

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck:
        return VenueOrderAck(
            venue_order_id=venue_order_id or "", client_order_id=client_order_id, status=VenueOrderStatus.CANCELLED
        )

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None:
        order = Order.objects.filter(client_order_id=client_order_id, venue=self.name).first()
        if order is None or not order.venue_order_id:
            return None
        status = {
            Order.Status.FILLED: VenueOrderStatus.FILLED,
            Order.Status.CANCELLED: VenueOrderStatus.CANCELLED,
            Order.Status.PARTIALLY_FILLED: VenueOrderStatus.PARTIALLY_FILLED,
            Order.Status.REJECTED: VenueOrderStatus.REJECTED,
        }.get(order.status, VenueOrderStatus.WORKING)
        return VenueOrderAck(
            venue_order_id=order.venue_order_id,
            client_order_id=client_order_id,
            status=status,
            filled_quantity=order.filled_quantity,
            average_price=order.average_price,
        )

    def fills_since(self, since: datetime) -> list[VenueFill]:
        return [
            VenueFill(
                venue_fill_id=f.venue_fill_id,
                venue_order_id=f.order.venue_order_id,
                client_order_id=f.order.client_order_id,
                quantity=f.quantity,
                price=f.price,
                fee=f.fee,
                ts=f.ts,
            )
            for f in Fill.objects.filter(venue=self.name, ts__gte=since).select_related("order").order_by("ts")
        ]

    def positions(self, *, bot_id: int | None = None) -> dict[str, Decimal]:
        """Signed net quantity per instrument from this venue's fills (of one bot, or of the whole tenant)."""
        fills = Fill.objects.filter(venue=self.name)
        if bot_id is not None:
            fills = fills.filter(bot_id=bot_id)
        totals = fills.values("instrument__symbol").annotate(
            bought=Sum("quantity", filter=Q(side="buy")), sold=Sum("quantity", filter=Q(side="sell"))
        )
        return {
            row["instrument__symbol"]: (row["bought"] or Decimal(0)) - (row["sold"] or Decimal(0)) for row in totals
        }


def match_working_orders(*, instrument: Instrument, timeframe: str, bar_ts: datetime) -> int:
    """Fill the current tenant's working sim orders of ``instrument`` on the bar that opened at ``bar_ts``.

    Orders decided on an earlier bar fill at this bar's open (``next_open``); with ``close`` an order also fills
    on its own decision bar's close. Each order meets each bar once, so calling this twice for a bar is harmless.
    Returns the number of fills recorded.
    """
    from execution.orders import writer

    # One transaction for the bar (the caller's, when it has one: an error undoes its block, a tenant's or a tick's
    # instrument): the orders that may meet the bar are read first, under their lock (nothing more is read when
    # there are none), then the bar; the orders it met are marked and its fills booked in one batch on those very
    # rows (``record_fills(locked=True)``: not read again), the mark written with the booking's update of the orders.
    with transaction.atomic(savepoint=False):
        orders = list(
            Order.objects.raw(
                _UNMATCHED_ORDERS_SQL,
                [
                    tenancy.require_tenant_id(),
                    instrument.id,
                    _sim_bar_venues(),
                    [Order.Status.WORKING, Order.Status.PARTIALLY_FILLED],
                    bar_ts,
                ],
            )
        )
        if not orders:
            return 0
        bar = next(iter(Bar.objects.raw(_BAR_SQL, [instrument.id, timeframe, bar_ts])), None)
        if bar is None:
            return 0
        fill_bar = FillBar(float(bar.open), float(bar.high), float(bar.low), float(bar.close), float(bar.volume))
        with writer.oms_writes(savepoint=False):
            return _match(orders, bar, fill_bar, instrument=instrument, timeframe=timeframe, bar_ts=bar_ts)


def _match(orders, bar, fill_bar, *, instrument: Instrument, timeframe: str, bar_ts: datetime) -> int:
    """Meet ``orders`` (read and locked by :func:`match_working_orders`) with the bar and book their fills."""
    from execution.orders import booking

    matched, reports = [], []
    for order in orders:
        model = fill_model(order.venue)
        eligible = order.not_before <= bar_ts if model.fill_at is FillAt.CLOSE else order.not_before < bar_ts
        if not eligible:
            continue
        order.instrument = instrument
        order.last_matched_bar_ts = bar_ts
        matched.append(order)
        fill = simulate_fill(
            SimOrder(
                Side(order.side), order.remaining, OrderType(order.order_type), order.limit_price, order.stop_price
            ),
            fill_bar,
            model=model,
            tick_size=instrument.tick_size,
            multiplier=instrument.multiplier,
        )
        if fill is not None:
            executed_at = bar.ts if model.fill_at is FillAt.NEXT_OPEN else bar.ts + timeframe_delta(timeframe)
            reports.append(
                booking.FillReport(
                    order=order,
                    venue_fill_id=f"{order.client_order_id}@{bar.ts.isoformat()}",
                    quantity=fill.quantity,
                    price=fill.price,
                    fee=fill.fee,
                    slippage=fill.slippage,
                    reference_price=fill.reference_price,
                    ts=executed_at,
                )
            )
    filled = {report.order.pk for report in reports}
    unfilled = [order.pk for order in matched if order.pk not in filled]
    if unfilled:  # met the bar without a fill (a limit or stop not reached): only the mark changes
        Order.objects.filter(pk__in=unfilled).update(last_matched_bar_ts=bar_ts)
    return booking.record_fills(reports, locked=True, also_write=["last_matched_bar_ts"])


def match_stored_bars(*, instrument: Instrument, timeframe: str, bar_ts: Sequence[datetime]) -> dict[int, int]:
    """Fill every tenant's working sim orders of ``instrument`` on bars just stored (``bar_ts``, oldest first),
    each tenant in its own transaction under its own RLS context, so a paper order fills as its bars arrive
    whether or not a bot ticks the instrument. Suspended tenants too: the venue fills what was sent. Returns the
    fills recorded per tenant (tenants without any are left out).

    Only bars at or after a tenant's oldest working order can fill anything; the rest are not looked at (a first
    refresh stores hundreds of bars of history). One tenant's failure is logged and does not stop the others: its
    orders meet the next stored bar."""
    recorded: dict[int, int] = {}
    ordered = sorted(bar_ts)
    if not ordered:
        return recorded
    for tenant_id in all_tenant_ids():
        try:
            with tenancy.tenant_context(tenant_id), transaction.atomic():
                if len(ordered) == 1:  # a bar's matching reads the orders itself, and stops there if there are none
                    fills = match_working_orders(instrument=instrument, timeframe=timeframe, bar_ts=ordered[0])
                else:
                    oldest = _working_sim_orders(instrument).aggregate(oldest=Min("not_before"))["oldest"]
                    fills = sum(
                        match_working_orders(instrument=instrument, timeframe=timeframe, bar_ts=ts)
                        for ts in ordered
                        if oldest is not None and ts >= oldest
                    )
        except Exception:
            logger.exception(
                "sim matching on stored bars failed for a tenant",
                extra={"tenant_id": tenant_id, "instrument": instrument.symbol, "timeframe": timeframe},
            )
            continue
        if fills:
            recorded[tenant_id] = fills
    return recorded


def _working_sim_orders(instrument: Instrument):
    """Working orders at the sim venues that fill on bars (the quote-filled paper twins never meet a bar)."""
    return Order.objects.filter(
        instrument=instrument,
        venue__in=_sim_bar_venues(),
        status__in=(Order.Status.WORKING, Order.Status.PARTIALLY_FILLED),
    )


def _sim_bar_venues() -> list[str]:
    return [venue for venue, config in settings.SIM_VENUE_FILL_MODELS.items() if not config.get("quotes")]


# What ``_working_sim_orders(instrument)`` not yet matched with the bar, locked in id order, reads, as fixed SQL
# (the tenant's filter written out, as its manager would add it; row-level security applies as well): a bar is
# matched for every tenant on every bar stored, most often finding nothing, and compiling the ORM's query (and the
# bar's) cost about two thirds of the Python of storing a bar with nothing to fill.
_UNMATCHED_ORDERS_SQL = f"""
SELECT * FROM {Order._meta.db_table}
 WHERE tenant_id = %s AND instrument_id = %s AND venue = ANY(%s) AND status = ANY(%s)
   AND (last_matched_bar_ts IS NULL OR last_matched_bar_ts < %s)
 ORDER BY id FOR UPDATE
"""
_BAR_SQL = f"SELECT * FROM {Bar._meta.db_table} WHERE instrument_id = %s AND timeframe = %s AND ts = %s LIMIT 1"
