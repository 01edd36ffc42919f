"""The OMS's part of a bot leaving LIVE (bots.services.leaving starts it): once the exit's cancel request has been
carried out, record what the venue still holds and, when anything is left, open an ``UNMANAGED_LIVE_POSITION``
incident and alert.

Runs inside the transaction that marks the cancel request processed, so the two are recorded together or not at
all (then the request stays PENDING and the beat's sweep runs both again; the cancels find nothing left to cancel
the second time). These records carry the trace of the run that did the work (the request's own when the hook runs
at its commit, the sweep's otherwise) and name the trace of the request that left LIVE (``leave_trace_id``).
"""

from __future__ import annotations

import copy

from django.db import transaction

from bots import services as bot_services
from bots.models import Bot, CancelRequest
from controlplane.alerts import alert
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import Order, RiskIncident
from execution.orders.holdings import position_snapshot
from execution.risk.services import risk_incident_resolve

UNMANAGED_LIVE_POSITION = str(ErrorCode.UNMANAGED_LIVE_POSITION)


def live_holdings(bot: Bot, instruments: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """(the bot's live book, the venue's positions) in ``instruments``: the one read of what a bot holds at its
    live venue (execution.orders.holdings). Raises ControlPlaneError when the venue cannot answer or cannot be read
    (never reports flat for a venue that did not say so)."""
    snapshot = position_snapshot(bot=bot)
    wanted = set(instruments)
    return (
        {s: q for s, q in snapshot.internal.items() if s in wanted},
        {s: q for s, q in snapshot.venue.items() if s in wanted},
    )


def account_for_live_exit(*, cancel_request: CancelRequest, cancel_result: dict) -> RiskIncident | None:
    """Record the exit's venue holdings (caller's transaction, tenant in context); the incident when not flat."""
    detail = cancel_request.detail or {}
    bot = Bot.objects.get(pk=cancel_request.bot_id)
    traded = copy.copy(bot)  # where it traded: a configuration edit may already have changed venue or instruments
    traded.venue, traded.instruments = detail.get("venue", bot.venue), detail.get("instruments", bot.instruments)
    venue_error = None
    try:
        book, venue_positions = live_holdings(traded, traded.instruments)
    except ControlPlaneError as error:
        venue_error = {"error_code": str(error.code), "message": error.message}
        book, venue_positions = {}, None
    open_orders = sorted(
        Order.objects.filter(bot=bot, venue=traded.venue, status__in=Order.OPEN_STATUSES).values_list(
            "client_order_id", flat=True
        )
    )
    report = bot_services.bot_record_live_exit(
        cancel_request_id=cancel_request.id,
        book=book,
        venue_positions=venue_positions,
        open_orders=open_orders,
        venue_error=venue_error,
    )
    if report.status == report.Status.MATCHED:
        return None
    details = {
        "reconciliation_id": report.id,
        "cancel_request_id": cancel_request.id,
        "venue": report.venue,
        "held": report.differences,
        "open_orders": open_orders,
        "venue_error": venue_error,
        "cancelled": {k: cancel_result.get(k) for k in ("orders_cancelled", "intents_cancelled")},
        "cancel_failures": cancel_result.get("failures", []),
        "to_stage": detail.get("to_stage"),
        "reason": detail.get("reason", ""),
        "leave_trace_id": cancel_request.trace_id,
    }
    incident = RiskIncident.objects.create(
        bot=bot, kind=UNMANAGED_LIVE_POSITION, details=details, trace_id=current_trace_id()
    )
    audit_record(
        action="risk_incident.open",
        resource_type="risk_incident",
        resource_id=incident.pk,
        actor_name="oms",
        after={"kind": UNMANAGED_LIVE_POSITION, "bot_id": bot.id, **details},
    )
    held = ", ".join(f"{s} {d['venue']:g}" for s, d in sorted(report.differences.items())) or "unknown"
    transaction.on_commit(
        lambda: alert(
            event="bot.unmanaged_live_position",
            message=f"bot {bot.name} left LIVE; {report.venue} still holds {held}"
            + (f" and {len(open_orders)} working order(s)" if open_orders else ""),
            tenant_id=bot.tenant_id,
            bot_id=bot.id,
            incident_id=incident.pk,
            reconciliation_id=report.id,
            venue=report.venue,
            held=report.differences,
            open_orders=open_orders,
            venue_error=venue_error,
            leave_trace_id=cancel_request.trace_id,
        )
    )
    return incident


def resolve_unmanaged_incidents(*, bot, reconciliation, action: str, actor_name: str) -> list[int]:
    """Close the incidents a ``live_exit`` report opened, once an operator resolved the report (same transaction)."""
    ids = list(
        RiskIncident.objects.filter(
            bot=bot,
            kind=UNMANAGED_LIVE_POSITION,
            status=RiskIncident.Status.OPEN,
            details__reconciliation_id=reconciliation.id,
        ).values_list("id", flat=True)
    )
    for incident_id in ids:
        risk_incident_resolve(
            incident_id=incident_id,
            actor_name=actor_name,
            note=f"resolved by {action} of live exit report {reconciliation.id}",
        )
    return ids
