"""Venue calls of the OMS: building an order and its request, one send with its uncertain-failure lookup, and
sending many orders at once.

Sends run outside any database transaction (the orders were recorded SUBMITTING and committed first), so a slow
venue never holds a row lock. :func:`place_all` sends a batch's orders concurrently on a thread pool: the legs of
one intent reach their venues together, not one after the other, and one slow venue does not delay the others.
Each pool task runs in a copy of the caller's context (tenant, trace id) and closes the database connection it may
have opened (a live adapter reads its credentials and records proof of use) before it ends, so no connection
outlives its task on a pool thread.

Inside an enclosing transaction the orders are sent one by one in the calling thread instead: another thread works
on another connection and could not see the caller's uncommitted rows (a test's transaction, or a caller that
records and sends in one block, as ``record_reconcile_flatten`` callers may).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from controlplane.books import is_sim_venue
from controlplane.trace import current_trace_id
from execution.models import IntentLeg, Order, TradeIntent
from execution.orders.routing import adapter_for
from execution.orders.writer import oms_writes
from integrations.venues.base import VenueError, VenueOrderAck, VenueOrderRequest, VenueOrderStatus


def client_order_id(leg: IntentLeg, purpose: str = Order.Purpose.LEG) -> str:
    """Stable per intent leg: a retried send carries the same id, so the venue (and a lookup) sees one order."""
    suffix = "" if purpose == Order.Purpose.LEG else "-flat"
    return f"cp-{leg.intent_id}-{leg.leg_index}{suffix}"


def order_for(
    intent: TradeIntent,
    leg: IntentLeg,
    reference_price: Decimal | None,
    purpose: str = Order.Purpose.LEG,
    side: str | None = None,
    quantity: Decimal | None = None,
) -> Order:
    flatten = purpose == Order.Purpose.FLATTEN
    return Order(
        tenant_id=intent.tenant_id,
        intent=intent,
        leg=leg,
        purpose=purpose,
        bot_id=intent.bot_id,
        venue=leg.venue,
        instrument_id=leg.instrument_id,
        client_order_id=client_order_id(leg, purpose),
        side=side or leg.side,
        quantity=quantity or leg.quantity,
        order_type="market" if flatten else leg.order_type,
        limit_price=None if flatten else leg.limit_price,
        stop_price=None if flatten else leg.stop_price,
        reference_price=reference_price,
        not_before=intent.bar_ts or timezone.now(),
        bot_stage=intent.bot.stage,
        trace_id=current_trace_id(),
    )


def request_for(order: Order) -> VenueOrderRequest:
    return VenueOrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.instrument.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        bot_id=order.bot_id,
        reference_price=order.reference_price,
        venue_market=(order.instrument.venue_symbols or {}).get(order.venue),
        instrument_id=order.instrument_id,
    )


def place(order: Order) -> VenueOrderAck:
    """One send; after an uncertain failure, look the order up instead of sending again. If the lookup cannot say
    (not there yet, or the venue does not answer), the uncertain error stands: the order may still arrive."""
    adapter = adapter_for(order.venue, bot_id=order.bot_id)
    try:
        return adapter.place_order(request_for(order))
    except VenueError as error:
        if not error.uncertain:
            raise
        try:
            found = adapter.lookup_order(client_order_id=order.client_order_id)
        except VenueError:
            found = None
        if found is None:
            raise
        return found


@dataclass(frozen=True)
class SendOutcome:
    """What one send produced: the venue's answer, or the error (``uncertain`` when the order may be there)."""

    order: Order
    ack: VenueOrderAck | None = None
    error: VenueError | None = None

    @property
    def rejected(self) -> bool:
        return self.ack is not None and self.ack.status == VenueOrderStatus.REJECTED

    @property
    def uncertain(self) -> bool:
        return self.error is not None and self.error.uncertain


_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One pool per process (a forked Celery child builds its own: threads do not survive a fork)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=settings.OMS_SEND_THREADS, thread_name_prefix="oms-send")
            _pool_pid = os.getpid()
        return _pool


def _place_outcome(order: Order) -> SendOutcome:
    try:
        return SendOutcome(order, ack=place(order))
    except VenueError as error:
        return SendOutcome(order, error=error)


def _place_on_pool_thread(order: Order) -> SendOutcome:
    try:
        return _place_outcome(order)
    finally:
        connections.close_all()  # this thread's connections only: none outlives the task


def place_all(orders: list[Order]) -> list[SendOutcome]:
    """Send every order (each at most once) and return their outcomes in the same order. Orders to venues across
    the wire go out concurrently on the pool, outside a transaction; every order inside a transaction (see the
    module's docstring) is sent in this thread, one by one. Sim orders are sent in this thread too, each sim venue's
    at once (``SimVenue.place_orders``, one statement for the batch): the sim venue is this process's own code on
    our own database, with no network wait to overlap, only a connection a pool thread would have to open."""
    sim: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        if is_sim_venue(order.venue):
            sim[order.venue].append(order)
    remote = [o for o in orders if not is_sim_venue(o.venue)]
    futures = {}
    if len(remote) > 1 and not connection.in_atomic_block:
        pool = _executor()
        # One context copy per task: a context can be entered by one thread at a time.
        futures = {id(o): pool.submit(contextvars.copy_context().run, _place_on_pool_thread, o) for o in remote}
    here = {id(o): _place_outcome(o) for o in remote if id(o) not in futures}
    for venue, batch in sim.items():
        here.update(zip(map(id, batch), _place_batch(venue, batch), strict=True))
    return [here[id(o)] if id(o) in here else futures[id(o)].result() for o in orders]


def _place_batch(venue: str, orders: list[Order]) -> list[SendOutcome]:
    """Many orders to one venue in one call (``place_orders``), at most once each: a venue error answers for every
    order of the call, and after an uncertain one each order is looked up, as :func:`place` does for one."""
    adapter = adapter_for(venue)
    try:
        acks = adapter.place_orders([request_for(order) for order in orders])
    except VenueError as error:
        if not error.uncertain:
            return [SendOutcome(order, error=error) for order in orders]
        outcomes = []
        for order in orders:
            try:
                found = adapter.lookup_order(client_order_id=order.client_order_id)
            except VenueError:
                found = None
            outcomes.append(SendOutcome(order, error=error) if found is None else SendOutcome(order, ack=found))
        return outcomes
    return [SendOutcome(order, ack=ack) for order, ack in zip(orders, acks, strict=True)]


def left_for_recovery(order: Order, error: VenueError) -> None:
    """An uncertain send stays SUBMITTING (neither failed nor re-sent) until the recovery sweep finds it at the
    venue or proves it absent; the clock for that starts now."""
    with oms_writes():
        Order.objects.filter(pk=order.pk, status=Order.Status.SUBMITTING, venue_order_id="").update(
            error_code=str(error.code),
            updated_at=timezone.now(),
            reason=f"uncertain: {error}"[:2000] + " (left for the recovery sweep; never re-sent)",
        )


def apply_ack(order: Order, ack: VenueOrderAck) -> None:
    """Copy the venue's answer onto the order (not saved)."""
    order.venue_order_id = ack.venue_order_id
    order.status = {
        VenueOrderStatus.REJECTED: Order.Status.REJECTED,
        VenueOrderStatus.CANCELLED: Order.Status.CANCELLED,
    }.get(ack.status, Order.Status.WORKING)
    order.reason = ack.reason
    order.updated_at = timezone.now()


def record_ack(order: Order, ack: VenueOrderAck) -> None:
    apply_ack(order, ack)
    order.save(update_fields=["venue_order_id", "status", "reason", "updated_at"])
