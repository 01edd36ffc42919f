"""Recovery of what a crash or a lost answer left open: orders recorded SUBMITTING but never acknowledged are
looked up at the venue by client order id (beat, and at worker start) instead of being sent again, and live fills
are synced from the venues.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from controlplane.books import is_sim_venue
from controlplane.services import audit_record
from execution.models import Order, TradeIntent
from execution.orders.booking import record_fill
from execution.orders.intents import intent_transition
from execution.orders.leg_risk import leg_failed
from execution.orders.sending import record_ack
from execution.orders.routing import adapter_for
from execution.orders.writer import ACTOR, oms_writes
from integrations.venues.base import VenueError, VenueOrderStatus

Status = TradeIntent.Status


def resolve_unacknowledged_orders(*, older_than: timedelta | None = None, limit: int = 100) -> dict:
    """Resolve the current tenant's orders left SUBMITTING without a venue order id (the process died, or timed
    out, between the send and the record). Each is looked up at its venue, never sent again:

    - found: the venue's id and status are recorded, with its fills (and their fees), and the intent moves on;
      a venue rejection applies the intent's failure policy;
    - proven absent (the lookup answered and it is not there): FAILED ``NOT_FOUND_AT_VENUE``, the failure
      policy applies;
    - the lookup itself fails (venue unreachable, ambiguous match): left SUBMITTING for the next sweep.

    Only orders older than ``older_than`` (``OMS_UNACKNOWLEDGED_AFTER_SECONDS``, longer than a send may take) are
    touched, so a send still in flight is never judged. Row locks (SKIP LOCKED) keep two sweeps apart."""
    age = older_than if older_than is not None else timedelta(seconds=settings.OMS_UNACKNOWLEDGED_AFTER_SECONDS)
    candidates = list(
        Order.objects.filter(status=Order.Status.SUBMITTING, venue_order_id="", updated_at__lte=timezone.now() - age)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    outcome = {"found": [], "not_found": [], "unresolved": []}
    for order_id in candidates:
        failure, ack = None, None
        with oms_writes():  # the lock keeps other sweeps off this order while its venue is asked
            order = (
                Order.objects.select_for_update(skip_locked=True, of=("self",))  # the order only, not its instrument
                .filter(pk=order_id, status=Order.Status.SUBMITTING, venue_order_id="")
                .select_related("instrument", "leg")
                .first()
            )
            if order is None:
                continue  # resolved meanwhile, or another sweep holds it
            adapter = adapter_for(order.venue, bot_id=order.bot_id)
            try:
                ack = adapter.lookup_order(client_order_id=order.client_order_id)
            except VenueError as error:
                outcome["unresolved"].append(
                    {"order": order.client_order_id, "error_code": str(error.code), "message": str(error)}
                )
                continue
            if ack is None:
                outcome["not_found"].append(order.client_order_id)
                failure = (
                    "NOT_FOUND_AT_VENUE",
                    f"{order.venue} has no order {order.client_order_id}: the send never arrived.",
                )
                order.status = Order.Status.FAILED
                order.save(update_fields=["status", "updated_at"])
            else:
                record_ack(order, ack)
                audit_record(
                    action="order.recovered",
                    resource_type="order",
                    resource_id=order.id,
                    actor_name=ACTOR,
                    before={"status": Order.Status.SUBMITTING},
                    after={"status": order.status, "venue_order_id": order.venue_order_id},
                )
                outcome["found"].append(order.client_order_id)
                if ack.status == VenueOrderStatus.REJECTED:
                    failure = ("VENUE_REJECTED", ack.reason or "rejected by the venue")
                else:
                    intent = TradeIntent.objects.select_for_update().get(pk=order.intent_id)
                    unsent = Order.objects.filter(
                        intent_id=intent.pk, purpose=Order.Purpose.LEG, status=Order.Status.SUBMITTING
                    ).exists()
                    if intent.status == Status.ACCEPTED and not unsent:
                        intent_transition(intent, Status.WORKING, actor_name=ACTOR, detail={"recovered": True})
        # Venue calls that follow (the failure policy's cancels or flattening, fills) run after the commit, each
        # recorded in its own OMS transaction as in a normal send.
        if failure is not None:
            leg_failed(order.intent_id, order, *failure)
        elif ack.filled_quantity > 0:
            _record_venue_fills(adapter, [order], since=order.created_at - FILL_LOOKBACK)
    return outcome


# A venue's clock and ours differ; fills are fetched from a little before the order was recorded.
FILL_LOOKBACK = timedelta(minutes=5)


def _record_venue_fills(adapter, orders: list[Order], *, since: datetime) -> int:
    """Record the venue's fills of ``orders`` (matched by venue or client order id); known fills change nothing."""
    by_venue_id = {o.venue_order_id: o for o in orders if o.venue_order_id}
    by_client_id = {o.client_order_id: o for o in orders}
    recorded = 0
    for fill in adapter.fills_since(since):
        order = by_venue_id.get(fill.venue_order_id) or by_client_id.get(fill.client_order_id)
        if order is None:
            continue
        if (
            record_fill(
                order=order,
                venue_fill_id=fill.venue_fill_id,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                reference_price=order.reference_price,
                ts=fill.ts,
            )
            is not None
        ):
            recorded += 1
    return recorded


def sync_live_fills() -> dict:
    """Record the fills of the current tenant's open, acknowledged orders at live venues (one fills call per
    venue). A venue that cannot answer is reported and tried again on the next sweep."""
    open_orders = list(
        Order.objects.filter(status__in=(Order.Status.WORKING, Order.Status.PARTIALLY_FILLED))
        .exclude(venue_order_id="")
        .select_related("instrument")
    )
    by_venue: dict[str, list[Order]] = {}
    for order in open_orders:
        if not is_sim_venue(order.venue):
            by_venue.setdefault(order.venue, []).append(order)
    result: dict = {"recorded": 0, "failures": []}
    for venue, orders in sorted(by_venue.items()):
        try:
            result["recorded"] += _record_venue_fills(
                adapter_for(venue, bot_id=orders[0].bot_id),
                orders,
                since=min(o.created_at for o in orders) - FILL_LOOKBACK,
            )
        except VenueError as error:
            result["failures"].append({"venue": venue, "error_code": str(error.code), "message": str(error)})
    return result
