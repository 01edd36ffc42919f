"""State changes of the risk controls, each audited in its own transaction: trading states (of a bot or the
tenant) and the resolution of risk incidents."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bots.models import Bot
from bots.risk_limits import InvalidRiskLimits, parse_risk_limits
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from execution.models import RiskIncident, TradingControl, TradingStateChoices


def _require_text(field: str, value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={field: ["This field is required."]})
    return value


def _control_snapshot(control: TradingControl) -> dict:
    return {"state": control.state, "reason": control.reason, "set_by": control.set_by}


def trading_state_set(
    *, bot_id: int | None, state: str, reason: str, actor=None, actor_name: str | None = None
) -> TradingControl:
    """Set the trading state of a bot (``bot_id``) or of the tenant in context (``bot_id`` None): ACTIVE,
    REDUCE_ONLY (only orders that shrink exposure pass) or HALTED. Setting the current state again changes
    nothing. The tick and the OMS read it on their next risk check."""
    if state not in TradingStateChoices.values:
        raise ControlPlaneError(
            ErrorCode.VALIDATION_ERROR,
            details={"state": [f"{state!r} is not a trading state; one of: {', '.join(TradingStateChoices.values)}."]},
        )
    reason = _require_text("reason", reason)
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
        TradingControl.objects.bulk_create([TradingControl(tenant_id=tenant_id, bot_id=bot_id)], ignore_conflicts=True)
        control = (
            TradingControl.objects.select_for_update().get(bot_id=bot_id)
            if bot_id is not None
            else (TradingControl.objects.select_for_update().get(bot__isnull=True))
        )
        if control.state == state:
            return control
        before = _control_snapshot(control)
        control.state, control.reason = state, reason
        control.set_by = actor_name or (actor.get_username() if getattr(actor, "is_authenticated", False) else "system")
        control.save(update_fields=["state", "reason", "set_by", "updated_at"])
        audit_record(
            action="trading_state.set",
            resource_type="bot" if bot_id is not None else "tenant",
            resource_id=bot_id if bot_id is not None else tenant_id,
            actor=actor,
            actor_name=actor_name,
            before=before,
            after=_control_snapshot(control),
        )
    return control


def tenant_risk_limits_set(
    *, risk_limits: dict, reason: str, actor=None, actor_name: str | None = None
) -> TradingControl:
    """Replace the tenant's own risk limits (every bot's orders are checked against them on top of the bot's),
    validated by the same parser the risk engine reads them with; the old and new limits go into the audit."""
    if not isinstance(risk_limits, dict):
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"risk_limits": ["Must be an object."]})
    try:
        parse_risk_limits(risk_limits)
    except InvalidRiskLimits as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"risk_limits": [str(exc)]}) from None
    reason = _require_text("reason", reason)
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        TradingControl.objects.bulk_create([TradingControl(tenant_id=tenant_id, bot_id=None)], ignore_conflicts=True)
        control = TradingControl.objects.select_for_update().get(bot__isnull=True)
        before = dict(control.risk_limits or {})
        if before == risk_limits:
            return control
        control.risk_limits = risk_limits
        control.set_by = actor_name or (actor.get_username() if getattr(actor, "is_authenticated", False) else "system")
        control.reason = reason
        control.save(update_fields=["risk_limits", "set_by", "reason", "updated_at"])
        audit_record(
            action="tenant.risk_limits.set",
            resource_type="tenant",
            resource_id=tenant_id,
            actor=actor,
            actor_name=actor_name,
            before={"risk_limits": before},
            after={"risk_limits": risk_limits, "reason": reason},
        )
    return control


def risk_incident_resolve(*, incident_id: int, note: str, actor=None, actor_name: str | None = None) -> RiskIncident:
    """Close an open incident with the operator's note; a resolved one cannot be resolved again."""
    note = _require_text("note", note)
    with transaction.atomic():
        incident = RiskIncident.objects.select_for_update().filter(pk=incident_id).first()
        if incident is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No risk incident {incident_id} in this tenant.")
        if incident.status != RiskIncident.Status.OPEN:
            raise ControlPlaneError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"Risk incident {incident_id} cannot go from {incident.status} to RESOLVED: it was resolved by "
                f"{incident.resolved_by} at {incident.resolved_at.isoformat()}.",
                details={"current": incident.status, "requested": RiskIncident.Status.RESOLVED},
            )
        incident.status, incident.resolved_at, incident.resolution_note = (
            RiskIncident.Status.RESOLVED,
            timezone.now(),
            note,
        )
        incident.resolved_by = actor_name or (
            actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
        )
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
        audit_record(
            action="risk_incident.resolve",
            resource_type="risk_incident",
            resource_id=incident.pk,
            actor=actor,
            actor_name=actor_name,
            before={"status": RiskIncident.Status.OPEN},
            after={"status": incident.status, "note": note, "kind": incident.kind, "bot_id": incident.bot_id},
        )
    return incident
