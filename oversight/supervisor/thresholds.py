"""The supervisor's thresholds: a default per trigger from settings, overridden per tenant (``SupervisorPolicy``)
through one schema, so a bad override is refused naming its field and never half-applied."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record


@dataclass(frozen=True)
class Field:
    setting: str
    kind: type
    minimum: float
    maximum: float | None
    help: str


# One schema: the override's name, the setting that gives its default, its type and bounds.
SCHEMA: dict[str, Field] = {
    "drawdown_fraction": Field(
        "SUPERVISOR_DRAWDOWN_FRACTION", float, 0.01, 1.0, "share of the bot's max_drawdown (the breaker kills at 1)"
    ),
    "daily_loss_fraction": Field(
        "SUPERVISOR_DAILY_LOSS_FRACTION", float, 0.01, 1.0, "share of the bot's max_daily_loss lost today"
    ),
    "tick_errors": Field("SUPERVISOR_TICK_ERRORS", int, 1, None, "consecutive tick errors of the bot's runner"),
    "rate_window_seconds": Field("SUPERVISOR_RATE_WINDOW_SECONDS", int, 60, 86400, "window of the order rates"),
    "rate_min_orders": Field("SUPERVISOR_RATE_MIN_ORDERS", int, 1, None, "orders in the window before a rate counts"),
    "reject_rate": Field("SUPERVISOR_REJECT_RATE", float, 0.01, 1.0, "share of orders the venue rejected"),
    "venue_error_rate": Field("SUPERVISOR_VENUE_ERROR_RATE", float, 0.01, 1.0, "share of orders that failed"),
    "stale_bars": Field("SUPERVISOR_STALE_BARS", int, 1, None, "bars of open market missed on an instrument"),
    "heartbeat_seconds": Field("SUPERVISOR_HEARTBEAT_SECONDS", int, 15, None, "seconds without a runner heartbeat"),
    "min_parity": Field("SUPERVISOR_MIN_PARITY", float, 0.0, 1.0, "paper/live fill parity floor of a LIVE bot"),
    "status_grace_seconds": Field(
        "SUPERVISOR_STATUS_GRACE_SECONDS", int, 0, None, "seconds the tenant's status may be not OK"
    ),
}


def defaults() -> dict:
    return {name: field.kind(getattr(settings, field.setting)) for name, field in SCHEMA.items()}


def validate_overrides(data) -> dict:
    """The overrides, cleaned, or VALIDATION_ERROR naming every bad field (unknown names included)."""
    if not isinstance(data, dict):
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"overrides": ["Expected an object."]})
    errors: dict[str, list[str]] = {}
    clean = {}
    for name, value in data.items():
        field = SCHEMA.get(name)
        if field is None:
            errors[name] = [f"Unknown threshold; one of: {', '.join(SCHEMA)}."]
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[name] = [f"Expected a number ({field.help})."]
            continue
        if field.kind is int and value != int(value):
            errors[name] = ["Expected a whole number."]
            continue
        if value < field.minimum or (field.maximum is not None and value > field.maximum):
            bound = f"at least {field.minimum}" + (f" and at most {field.maximum}" if field.maximum is not None else "")
            errors[name] = [f"Must be {bound} ({field.help})."]
            continue
        clean[name] = field.kind(value)
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    return clean


def tenant_thresholds(tenant_id: int) -> dict:
    """Defaults with the tenant's overrides applied (the tenant in context must be ``tenant_id``)."""
    from oversight.models import SupervisorPolicy

    policy = SupervisorPolicy.objects.filter(tenant_id=tenant_id).first()
    return {**defaults(), **(policy.overrides if policy else {})}


def supervisor_thresholds_set(*, overrides, actor) -> dict:
    """Replace the tenant's overrides (audited, old and new). Validated whole first: nothing is saved when any
    field is bad. Returns the effective thresholds."""
    from oversight.models import SupervisorPolicy

    clean = validate_overrides(overrides)
    tenant_id = tenancy.require_tenant_id()
    with transaction.atomic():
        SupervisorPolicy.objects.bulk_create([SupervisorPolicy(tenant_id=tenant_id)], ignore_conflicts=True)
        policy = SupervisorPolicy.objects.select_for_update().get(tenant_id=tenant_id)
        before = dict(policy.overrides)
        policy.overrides, policy.updated_by = clean, actor.get_username()
        policy.save(update_fields=["overrides", "updated_by", "updated_at"])
        audit_record(
            action="supervisor.thresholds_set",
            resource_type="tenant",
            resource_id=tenant_id,
            actor=actor,
            before={"overrides": before},
            after={"overrides": clean},
        )
    return tenant_thresholds(tenant_id)
