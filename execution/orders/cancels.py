"""Cancels through the OMS: one intent's open orders, and the cancel requests a kill or a bot leaving LIVE records
(carried out right after their transaction commits through the declared hook ``bots.kill.cancel_orders``, and
swept by beat when that did not happen).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import CancelRequest
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.selectors import all_tenant_ids
from controlplane.services import audit_record
from execution.models import Order, TradeIntent
from execution.orders.intents import intent_transition
from execution.orders.live_exit import account_for_live_exit
from execution.orders.routing import adapter_for
from execution.orders.writer import ACTOR, oms_writes
from integrations.venues.base import VenueError

Status = TradeIntent.Status
logger = logging.getLogger(__name__)


def mark_cancelled(order: Order, reason: str) -> None:
    order.status, order.cancelled_at, order.reason = Order.Status.CANCELLED, timezone.now(), reason
    order.save(update_fields=["status", "cancelled_at", "reason", "updated_at"])


def cancel_at_venue(order: Order) -> dict:
    """Cancel one open order (caller holds its lock inside oms_writes). SUBMITTING orders were never acknowledged:
    they are cancelled by client order id too, in case the send did reach the venue."""
    try:
        adapter_for(order.venue, bot_id=order.bot_id).cancel_order(
            client_order_id=order.client_order_id, venue_order_id=order.venue_order_id or None
        )
    except VenueError as error:
        return {
            "order": order.client_order_id,
            "cancelled": False,
            "error_code": str(error.code),
            "message": str(error),
        }
    mark_cancelled(order, "cancelled")
    return {"order": order.client_order_id, "cancelled": True}


def _cancel_open(intents_filter: Q, orders_filter: Q, *, reason: str, actor=None, actor_name: str = ACTOR) -> dict:
    """Cancel open orders and open intents matching the filters (current tenant)."""
    results = {"orders_cancelled": 0, "intents_cancelled": 0, "failures": []}
    with oms_writes():
        for order in Order.objects.select_for_update().filter(orders_filter, status__in=Order.OPEN_STATUSES):
            outcome = cancel_at_venue(order)
            if outcome["cancelled"]:
                results["orders_cancelled"] += 1
            else:
                results["failures"].append(outcome)
        for intent in TradeIntent.objects.select_for_update().filter(
            intents_filter, status__in=TradeIntent.OPEN_STATUSES
        ):
            if Order.objects.filter(intent=intent, status__in=Order.OPEN_STATUSES).exists():
                continue  # an order could not be cancelled: the intent stays open, and the failure is reported
            intent_transition(intent, Status.CANCELLED, actor=actor, actor_name=actor_name, detail={"reason": reason})
            results["intents_cancelled"] += 1
    return results


def cancel_intent(*, intent_id: int, actor=None, actor_name: str | None = None) -> TradeIntent:
    """Cancel an open intent and its open orders; a finished intent cannot be cancelled (ILLEGAL_TRANSITION)."""
    with transaction.atomic():
        intent = TradeIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No intent {intent_id} in this tenant.")
        if intent.status not in TradeIntent.OPEN_STATUSES:
            raise ControlPlaneError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"Intent {intent_id} is {intent.status} and cannot be cancelled.",
                details={"current": intent.status, "requested": Status.CANCELLED},
            )
        result = _cancel_open(
            Q(pk=intent_id), Q(intent_id=intent_id), reason="cancelled on request", actor=actor, actor_name=actor_name
        )
        if result["failures"]:
            raise ControlPlaneError(
                ErrorCode.SERVICE_UNAVAILABLE, "The venue did not cancel every order.", details=result
            )
        intent.refresh_from_db()
    return intent


def process_cancel_request(*, cancel_request_id: int) -> dict:
    """Carry out a kill's cancel request: cancel the bot's, the tenant's or (global) every tenant's open orders
    and intents, then mark the request DONE or FAILED with the result. Running it twice changes nothing. A bot
    leaving LIVE (purpose ``leave_live``) then has what its venue still holds recorded in the same transaction
    (execution.orders.live_exit)."""
    with tenancy.tenant_context(tenancy.current_tenant_id()), transaction.atomic():
        request = CancelRequest.unscoped.filter(pk=cancel_request_id).first()
        if request is None or request.status != CancelRequest.Status.PENDING:
            return {}
        scope, tenant_id, bot_id, reason = request.scope, request.tenant_id, request.bot_id, request.reason
        leaving_live = request.purpose == CancelRequest.Purpose.LEAVE_LIVE
    tenant_ids = [tenant_id] if scope != CancelRequest.Scope.GLOBAL else all_tenant_ids()
    result: dict = {"orders_cancelled": 0, "intents_cancelled": 0, "failures": []}
    for tid in tenant_ids:
        with tenancy.tenant_context(tid):
            scoped = Q(bot_id=bot_id) if scope == CancelRequest.Scope.BOT else Q()
            try:
                part = _cancel_open(
                    scoped,
                    scoped,
                    reason=reason if leaving_live else f"kill ({scope.lower()}): {reason}",
                    actor_name="leave_live" if leaving_live else f"kill:{scope.lower()}",
                )
            except Exception as error:  # report, never swallow: the request is FAILED with the reason
                logger.exception("cancel request failed", extra={"cancel_request_id": cancel_request_id})
                part = {
                    "orders_cancelled": 0,
                    "intents_cancelled": 0,
                    "failures": [{"tenant_id": tid, "message": str(error)}],
                }
            for key in ("orders_cancelled", "intents_cancelled"):
                result[key] += part[key]
            result["failures"] += part["failures"]
    status = CancelRequest.Status.FAILED if result["failures"] else CancelRequest.Status.DONE
    with tenancy.tenant_context(tenant_id), transaction.atomic():
        updated = CancelRequest.unscoped.filter(pk=cancel_request_id, status=CancelRequest.Status.PENDING).update(
            status=status, processed_at=timezone.now(), result=result
        )
        if updated:
            audit_record(
                action="cancel_request.process",
                resource_type="cancel_request",
                resource_id=cancel_request_id,
                actor_name=ACTOR,
                tenant_id=tenant_id,
                before={"status": CancelRequest.Status.PENDING},
                after={"status": status, **result},
            )
            if leaving_live:  # only the run that marked it processed: one exit report, one incident
                account_for_live_exit(cancel_request=request, cancel_result=result)
    return result


def cancel_hook(*, cancel_request_id: int, scope: str, tenant_id: int | None, bot_id: int | None) -> None:
    """The declared hook ``bots.kill.cancel_orders`` (settings.CONTROLPLANE_HOOKS): a committed kill cancels orders
    through the OMS right away."""
    with tenancy.tenant_context(tenant_id):
        process_cancel_request(cancel_request_id=cancel_request_id)


def process_pending_cancel_requests() -> int:
    """Sweep for cancel requests of the current tenant (and global ones) still PENDING: hooks that failed."""
    ids = list(CancelRequest.unscoped.filter(status=CancelRequest.Status.PENDING).values_list("id", flat=True))
    for cancel_id in ids:
        process_cancel_request(cancel_request_id=cancel_id)
    return len(ids)
