"""Leg risk: what the OMS does when one leg of an intent fails while others were sent (or filled).

The legs of an intent are sent together (``execution.orders.sending.place_all``), so when one fails the others
have usually reached their venues. The intent's failure policy then applies:

- every other open leg is cancelled at its venue (a leg whose send is still uncertain is cancelled by its client
  order id, in case it arrived); a leg never handed to its venue is marked CANCELLED, never sent;
- ``FLATTEN`` also closes whatever the other legs already filled with a market order the other way;
  ``CANCEL_REMAINING`` leaves the filled quantity as it is (the operator decides).

The intent becomes FAILED with ``status_detail`` naming the failed leg, its error, the policy and each action
(audited as ``intent.status``), and a multi-leg failure raises the alert ``intent.leg_failed`` after the commit:
critical when something may still be exposed (a filled leg left or a flatten or cancel that did not go through),
warning when every other leg was cancelled or flattened.
"""

from __future__ import annotations

from django.db import transaction

from controlplane.alerts import alert
from controlplane.models import Severity
from execution.models import Order, TradeIntent
from execution.orders.cancels import cancel_at_venue, mark_cancelled
from execution.orders.intents import intent_transition
from execution.orders.sending import order_for, place, record_ack
from execution.orders.writer import ACTOR, oms_writes
from integrations.venues.base import VenueError

Status = TradeIntent.Status

# Actions after which the intent may still hold exposure at a venue.
EXPOSED_ACTIONS = {"flatten_failed", "left_filled", "cancel_failed"}


def leg_failed(intent_id: int, failed: Order, error_code: str, message: str) -> None:
    """Apply the intent's multi-leg failure policy, say so in its status, and alert on a multi-leg failure."""
    with oms_writes():
        intent = TradeIntent.objects.select_for_update(of=("self",)).select_related("bot").get(pk=intent_id)
        failed = Order.objects.select_for_update(of=("self",)).select_related("leg").get(pk=failed.pk)
        if failed.status in Order.OPEN_STATUSES:
            failed.status = Order.Status.FAILED
        failed.error_code, failed.reason = error_code, message[:2000]
        failed.save(update_fields=["status", "error_code", "reason", "updated_at"])
        actions = []
        others = list(
            Order.objects.select_for_update(of=("self",))  # not the instrument, leg: venues are called below
            .filter(intent=intent, purpose=Order.Purpose.LEG)
            .exclude(pk=failed.pk)
            .select_related("instrument", "leg")
            .order_by("leg__leg_index")
        )
        for other in others:
            if other.status == Order.Status.SUBMITTING and not other.error_code:
                mark_cancelled(other, "never sent: another leg failed")
                actions.append({"leg": other.leg.leg_index, "action": "not_sent"})
            elif other.status in Order.OPEN_STATUSES:
                # Acknowledged, or sent with an uncertain outcome (cancelled by client order id in case it arrived).
                outcome = cancel_at_venue(other)
                action = "cancelled" if outcome["cancelled"] else "cancel_failed"
                actions.append({"leg": other.leg.leg_index, "action": action, **outcome})
    flatten = []
    if intent.failure_policy == TradeIntent.FailurePolicy.FLATTEN:
        flatten = _flatten_filled_legs(intent)
    else:
        flatten = [
            {"leg": o.leg.leg_index, "action": "left_filled", "quantity": str(o.filled_quantity)}
            for o in Order.objects.filter(intent=intent, purpose=Order.Purpose.LEG, filled_quantity__gt=0)
            .exclude(pk=failed.pk)
            .select_related("leg")
        ]
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
        if others:
            _alert_on_commit(intent, detail)


def _alert_on_commit(intent: TradeIntent, detail: dict) -> None:
    exposed = any(action["action"] in EXPOSED_ACTIONS for action in detail["actions"])
    transaction.on_commit(
        lambda: alert(
            event="intent.leg_failed",
            message=f"intent {intent.pk}: leg {detail['failed_leg']} failed ({detail['error_code']}); "
            f"{intent.failure_policy} applied" + ("; exposure may remain" if exposed else ""),
            tenant_id=intent.tenant_id,
            bot_id=intent.bot_id,
            severity=Severity.CRITICAL if exposed else Severity.WARNING,
            key=f"intent.leg_failed:{intent.pk}",
            intent_id=intent.pk,
            failed_leg=detail["failed_leg"],
            error_code=detail["error_code"],
            policy=intent.failure_policy,
            actions=detail["actions"],
        )
    )


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
            flat = order_for(
                intent,
                order.leg,
                order.average_price,
                purpose=Order.Purpose.FLATTEN,
                side="sell" if order.side == "buy" else "buy",
                quantity=order.filled_quantity,
            )
            flat.save()
        try:
            ack = place(Order.objects.select_related("instrument").get(pk=flat.pk))
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
