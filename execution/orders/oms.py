"""The OMS: claims pending intents, checks them once more against the risk limits, and sends their legs.

Only the OMS writes orders and fills (``execution.orders.writer.oms_writes``; booking a fill is
``execution.orders.booking``, cancels ``execution.orders.cancels``, recovery ``execution.orders.recovery``).

Sending is at-most-once: an order is recorded SUBMITTING and committed before the venue call, so a crash leaves a
row to look up by client order id rather than a blind re-send; ``resolve_unacknowledged_orders`` (beat, and at
worker start) does that lookup and records what the venue says.

Multi-leg policy: legs are sent in order. When a leg fails (venue error or rejection), the legs not yet sent are
never sent (CANCELLED), the other legs' open orders are cancelled, and with ``FLATTEN`` whatever already filled is
closed with a market order; the intent becomes FAILED and ``status_detail`` names the failed leg, its error, the
policy and each action taken.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import IntentLeg, Order, TradeIntent
from execution.orders.cancels import cancel_at_venue, mark_cancelled
from execution.orders.intents import intent_transition, reject, risk_refusal
from execution.orders.routing import adapter_for
from execution.orders.writer import ACTOR, oms_writes
from integrations.venues.base import VenueError, VenueOrderAck, VenueOrderRequest, VenueOrderStatus

logger = logging.getLogger(__name__)
Status = TradeIntent.Status


def client_order_id(leg: IntentLeg, purpose: str = Order.Purpose.LEG) -> str:
    """Stable per intent leg: a retried send carries the same id, so the venue (and a lookup) sees one order."""
    suffix = "" if purpose == Order.Purpose.LEG else "-flat"
    return f"cp-{leg.intent_id}-{leg.leg_index}{suffix}"


# --- Claim, re-check, send ----------------------------------------------------------------------------------


def process_pending_intents(*, limit: int = 500) -> int:
    """Claim up to ``limit`` PENDING intents of the current tenant (SKIP LOCKED, so workers never share one),
    re-check kill state and risk, and send the accepted ones. Returns how many intents were claimed."""
    tenancy.require_tenant_id()
    claimed = 0
    while claimed < limit:
        with oms_writes():
            intent = (
                TradeIntent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Status.PENDING)
                .select_related("bot")
                .order_by("id")
                .first()
            )
            if intent is None:
                break
            claimed += 1
            accepted = _accept_or_reject(intent)
        if accepted:
            _send(intent.pk)
    return claimed


def _accept_or_reject(intent: TradeIntent) -> bool:
    """The second risk check, just before sending; accepted intents get their orders recorded SUBMITTING."""
    legs = list(intent.legs.select_related("instrument").order_by("leg_index"))
    refusal, checks, prices = risk_refusal(
        bot=intent.bot, legs=[(leg, leg.instrument) for leg in legs], bar_ts=intent.bar_ts, at=timezone.now()
    )
    if refusal is not None:
        refusal = {**refusal, "checked_by": "oms"}
        reject(intent, refusal, checks, actor_name=ACTOR)
        return False
    intent.risk_checks = list(intent.risk_checks or []) + [{**c, "checked_by": "oms"} for c in checks]
    intent.save(update_fields=["risk_checks", "updated_at"])
    Order.objects.bulk_create([_order_for(intent, leg, prices[index]) for index, leg in enumerate(legs)])
    intent_transition(intent, Status.ACCEPTED, actor_name=ACTOR)
    return True


def _order_for(
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


def _request(order: Order) -> VenueOrderRequest:
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
    )


def _place(order: Order) -> VenueOrderAck:
    """One send; after an uncertain failure, look the order up instead of sending again. If the lookup cannot say
    (not there yet, or the venue does not answer), the uncertain error stands: the order may still arrive."""
    adapter = adapter_for(order.venue, bot_id=order.bot_id)
    try:
        return adapter.place_order(_request(order))
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


def _left_for_recovery(order: Order, error: VenueError) -> None:
    """An uncertain send stays SUBMITTING (neither failed nor re-sent) until the recovery sweep finds it at the
    venue or proves it absent; the clock for that starts now."""
    with oms_writes():
        Order.objects.filter(pk=order.pk, status=Order.Status.SUBMITTING, venue_order_id="").update(
            error_code=str(error.code),
            updated_at=timezone.now(),
            reason=f"uncertain: {error}"[:2000] + " (left for the recovery sweep; never re-sent)",
        )


def record_ack(order: Order, ack: VenueOrderAck) -> None:
    order.venue_order_id = ack.venue_order_id
    order.status = {
        VenueOrderStatus.REJECTED: Order.Status.REJECTED,
        VenueOrderStatus.CANCELLED: Order.Status.CANCELLED,
    }.get(ack.status, Order.Status.WORKING)
    order.reason = ack.reason
    order.save(update_fields=["venue_order_id", "status", "reason", "updated_at"])


def _send(intent_id: int) -> None:
    """Send the intent's legs in order, each recorded before and after its venue call."""
    orders = list(
        Order.objects.filter(intent_id=intent_id, purpose=Order.Purpose.LEG, status=Order.Status.SUBMITTING)
        .select_related("instrument", "leg")
        .order_by("leg__leg_index")
    )
    for order in orders:
        with transaction.atomic():  # reads the intent under its lock; writes no order, so no writer mark
            intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
            if intent.status != Status.ACCEPTED:  # cancelled meanwhile: send nothing more
                return
        try:
            ack = _place(order)
        except VenueError as error:
            if error.uncertain:
                _left_for_recovery(order, error)  # later legs wait: the intent stays ACCEPTED until resolved
                return
            leg_failed(intent_id, order, str(error.code), str(error))
            return
        with oms_writes():
            record_ack(order, ack)
        if ack.status == VenueOrderStatus.REJECTED:
            leg_failed(intent_id, order, "VENUE_REJECTED", ack.reason or "rejected by the venue")
            return
    with transaction.atomic():  # the intent's status only: orders are not written here
        intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
        if intent.status == Status.ACCEPTED:
            intent_transition(intent, Status.WORKING, actor_name=ACTOR)


def leg_failed(intent_id: int, failed: Order, error_code: str, message: str) -> None:
    """Apply the intent's multi-leg failure policy and say so in its status."""
    with oms_writes():
        intent = TradeIntent.objects.select_for_update().select_related("bot").get(pk=intent_id)
        failed = Order.objects.select_for_update().get(pk=failed.pk)
        if failed.status in Order.OPEN_STATUSES:
            failed.status = Order.Status.FAILED
        failed.error_code, failed.reason = error_code, message[:2000]
        failed.save(update_fields=["status", "error_code", "reason", "updated_at"])
        actions = []
        for other in (
            Order.objects.select_for_update()
            .filter(intent=intent, purpose=Order.Purpose.LEG)
            .exclude(pk=failed.pk)
            .select_related("instrument", "leg")
            .order_by("leg__leg_index")
        ):
            if other.status == Order.Status.SUBMITTING:
                mark_cancelled(other, "never sent: another leg failed")
                actions.append({"leg": other.leg.leg_index, "action": "not_sent"})
            elif other.status in Order.OPEN_STATUSES:
                actions.append({"leg": other.leg.leg_index, "action": "cancelled", **cancel_at_venue(other)})
    flatten = []
    if intent.failure_policy == TradeIntent.FailurePolicy.FLATTEN:
        flatten = _flatten_filled_legs(intent)
    with oms_writes():
        intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
        detail = {
            "failed_leg": failed.leg.leg_index,
            "error_code": error_code,
            "message": message,
            "policy": intent.failure_policy,
            "actions": actions + flatten,
        }
        if intent.status in (Status.ACCEPTED, Status.WORKING, Status.PARTIALLY_FILLED):
            intent_transition(intent, Status.FAILED, actor_name=ACTOR, detail=detail)


def _flatten_filled_legs(intent: TradeIntent) -> list[dict]:
    """Close what the other legs filled with market orders in the opposite direction."""
    actions = []
    filled = list(
        Order.objects.filter(intent=intent, purpose=Order.Purpose.LEG, filled_quantity__gt=0).select_related(
            "leg", "instrument"
        )
    )
    for order in filled:
        with oms_writes():
            flat = _order_for(
                intent,
                order.leg,
                order.average_price,
                purpose=Order.Purpose.FLATTEN,
                side="sell" if order.side == "buy" else "buy",
                quantity=order.filled_quantity,
            )
            flat.save()
        try:
            ack = _place(Order.objects.select_related("instrument").get(pk=flat.pk))
        except VenueError as error:
            with oms_writes():
                Order.objects.filter(pk=flat.pk).update(
                    status=Order.Status.FAILED, error_code=str(error.code), reason=str(error)
                )
            actions.append({"leg": order.leg.leg_index, "action": "flatten_failed", "error_code": str(error.code)})
            continue
        with oms_writes():
            record_ack(flat, ack)
        actions.append(
            {
                "leg": order.leg.leg_index,
                "action": "flatten_sent",
                "order": flat.client_order_id,
                "quantity": str(order.filled_quantity),
            }
        )
    return actions


# --- Recovery: orders whose send was never recorded ------------------------------------------------------


# --- Fills -------------------------------------------------------------------------------------------------


# --- Cancels -----------------------------------------------------------------------------------------------


# --- Operator flatten (reconcile resolution) ---------------------------------------------------------------


def record_reconcile_flatten(
    *,
    bot,
    venue: str,
    instrument,
    quantity: Decimal,
    reference_price: Decimal | None,
    idempotency_key: str,
    actor_name: str,
    detail: dict,
) -> TradeIntent:
    """Record an operator's flatten of one instrument: a ``reconcile`` intent, ACCEPTED, with one market leg of the
    opposite side of the venue's signed ``quantity`` and its order SUBMITTING, for :func:`send_reconcile_flatten`
    to send once the caller commits. It skips the risk limits and the reconcile-mismatch block on purpose (it only
    closes what the venue holds, as ``_flatten_filled_legs`` does); the caller checks the kill switches first.
    The key (one per report and instrument) is unique per tenant, so the same flatten cannot be recorded twice."""
    from execution.orders.intents import LegSpec, request_hash

    side, size = ("sell" if quantity > 0 else "buy"), abs(quantity)
    spec = LegSpec(venue=venue, symbol=instrument.symbol, side=side, quantity=size, order_type="market")
    with oms_writes():
        intent = TradeIntent.objects.create(
            bot=bot,
            idempotency_key=idempotency_key,
            source=TradeIntent.Source.RECONCILE,
            request_hash=request_hash(
                bot_id=bot.id, legs=[spec], bar_ts=None, failure_policy=TradeIntent.FailurePolicy.CANCEL_REMAINING
            ),
            created_by=actor_name,
            trace_id=current_trace_id(),
        )
        leg = IntentLeg.objects.create(
            intent=intent,
            leg_index=0,
            venue=venue,
            instrument=instrument,
            side=side,
            quantity=size,
            order_type="market",
        )
        audit_record(
            action="intent.create",
            resource_type="intent",
            resource_id=intent.pk,
            actor_name=actor_name,
            after={
                "bot_id": bot.id,
                "source": intent.source,
                "idempotency_key": idempotency_key,
                "status": intent.status,
                "legs": [
                    {
                        "venue": venue,
                        "symbol": instrument.symbol,
                        "side": side,
                        "quantity": str(size),
                        "order_type": "market",
                    }
                ],
            },
        )
        intent_transition(intent, Status.ACCEPTED, actor_name=actor_name, detail=detail)
        _order_for(intent, leg, reference_price).save()
    return intent


def send_reconcile_flatten(*, intent_ids: list[int]) -> list[dict]:
    """Send recorded flatten intents through the normal send path (at most once: an uncertain send is left for the
    recovery sweep) and say what became of each order."""
    for intent_id in intent_ids:
        _send(intent_id)
    return [
        {
            "instrument": order.instrument.symbol,
            "order": order.client_order_id,
            "side": order.side,
            "quantity": str(order.quantity),
            "status": order.status,
            "venue_order_id": order.venue_order_id,
            "error_code": order.error_code,
        }
        for order in Order.objects.filter(intent_id__in=intent_ids).select_related("instrument").order_by("id")
    ]
