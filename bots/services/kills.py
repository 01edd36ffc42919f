"""Kill switches at three levels: bot, tenant, platform. Latched; each records a cancel request for the OMS."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from bots.models import Bot, CancelRequest, GlobalKillSwitch, TenantKillSwitch
from bots.selectors import flat_reconciliation_since_kill
from bots.services.common import _actor_label, _illegal, _locked_bot
from controlplane import hooks, tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)


def _request_cancel(
    *,
    scope: str,
    reason: str,
    requested_by: str,
    bot: Bot | None = None,
    tenant_id: int | None = None,
    purpose: str = CancelRequest.Purpose.KILL,
    detail: dict | None = None,
) -> CancelRequest:
    """Record what the OMS must cancel, and ask the OMS to carry it out once it is committed (the declared hook
    ``bots.kill.cancel_orders``). A hook that fails leaves the request PENDING: the beat's sweep carries it out."""
    cancel = CancelRequest.objects.create(
        tenant_id=tenant_id,
        scope=scope,
        bot=bot,
        reason=reason,
        requested_by=requested_by,
        trace_id=current_trace_id(),
        purpose=purpose,
        detail=detail or {},
    )

    def notify():
        try:
            hooks.hook("bots.kill.cancel_orders")(
                cancel_request_id=cancel.id, scope=scope, tenant_id=tenant_id, bot_id=bot.id if bot else None
            )
        except Exception:
            logger.exception("cancel hook failed", extra={"cancel_request_id": cancel.id})

    transaction.on_commit(notify)
    return cancel


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"reason": ["A reason is required."]})
    return reason


def bot_kill(*, bot_id: int, actor, reason: str, actor_name: str | None = None) -> Bot:
    """Latch the bot's kill and ask the OMS to cancel its open orders. Killing a killed bot changes nothing."""
    reason = _require_reason(reason)
    label = _actor_label(actor, actor_name)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if bot.killed:
            return bot
        bot.killed, bot.killed_at, bot.killed_by, bot.kill_reason = True, timezone.now(), label, reason
        bot.save(update_fields=["killed", "killed_at", "killed_by", "kill_reason", "updated_at"])
        cancel = _request_cancel(
            scope=CancelRequest.Scope.BOT, reason=reason, requested_by=label, bot=bot, tenant_id=bot.tenant_id
        )
        audit_record(
            action="bot.kill",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            actor_name=actor_name,
            before={"killed": False},
            after={"killed": True, "reason": reason, "cancel_request_id": cancel.id},
        )
    return bot


class PositionsDecision:
    KEEP_POSITIONS = "keep_positions"
    FLATTENED_AT_VENUE = "flattened_at_venue"
    CHOICES = (KEEP_POSITIONS, FLATTENED_AT_VENUE)


def bot_unkill(
    *, bot_id: int, actor, reason: str, positions_decision: str | None = None, accepted_positions: dict | None = None
) -> Bot:
    """Release a killed bot: needs a reason and either a flat, matching reconciliation of its book made after the
    kill or the operator's explicit decision about its positions. A decision must come with what it accepts
    (``accepted_positions``: the book's positions as the caller measured them, oversight.rearm), recorded in the
    audit event, so the record shows what the operator knowingly kept."""
    reason = _require_reason(reason)
    if positions_decision is not None and accepted_positions is None:
        raise ValueError("a positions decision needs the positions it accepts (oversight.rearm.bot_rearm)")
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if not bot.killed:
            raise _illegal(f"Bot {bot.name}", "NOT_KILLED", "UNKILL", "The bot is not killed.")
        flat_reconcile = flat_reconciliation_since_kill(bot)
        if positions_decision is None and flat_reconcile is None:
            raise ControlPlaneError(ErrorCode.UNKILL_NEEDS_RECONCILE, details={"bot_id": bot.id})
        before = {"killed": True, "killed_at": bot.killed_at.isoformat(), "kill_reason": bot.kill_reason}
        bot.killed, bot.killed_at, bot.killed_by, bot.kill_reason = False, None, "", ""
        bot.save(update_fields=["killed", "killed_at", "killed_by", "kill_reason", "updated_at"])
        audit_record(
            action="bot.unkill",
            resource_type="bot",
            resource_id=bot.id,
            actor=actor,
            before=before,
            after={
                "killed": False,
                "reason": reason,
                "positions_decision": positions_decision,
                "accepted_positions": accepted_positions if positions_decision is not None else None,
                "reconciliation_id": flat_reconcile.id if flat_reconcile else None,
            },
        )
    return bot


def _locked_tenant_switch() -> TenantKillSwitch:
    tenant_id = tenancy.require_tenant_id()
    TenantKillSwitch.objects.bulk_create([TenantKillSwitch(tenant_id=tenant_id)], ignore_conflicts=True)
    return TenantKillSwitch.objects.select_for_update().get(tenant_id=tenant_id)


def tenant_kill(*, actor, reason: str) -> TenantKillSwitch:
    reason = _require_reason(reason)
    label = _actor_label(actor, None)
    with transaction.atomic():
        switch = _locked_tenant_switch()
        if switch.killed:
            return switch
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = True, timezone.now(), label, reason
        switch.save()
        cancel = _request_cancel(
            scope=CancelRequest.Scope.TENANT, reason=reason, requested_by=label, tenant_id=switch.tenant_id
        )
        audit_record(
            action="tenant.kill",
            resource_type="tenant",
            resource_id=switch.tenant_id,
            actor=actor,
            before={"killed": False},
            after={"killed": True, "reason": reason, "cancel_request_id": cancel.id},
        )
    return switch


def tenant_unkill(*, actor, reason: str, live_bots_not_flat: list[dict] | None = None) -> TenantKillSwitch:
    """Release the tenant's switch. Bots killed one by one stay killed. ``live_bots_not_flat`` (oversight.rearm
    measures it) goes into the audit event: what the owner re-armed the tenant over."""
    reason = _require_reason(reason)
    with transaction.atomic():
        switch = _locked_tenant_switch()
        if not switch.killed:
            raise _illegal("The tenant", "NOT_KILLED", "UNKILL", "The tenant is not killed.")
        before = {"killed": True, "reason": switch.reason}
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = (
            False,
            timezone.now(),
            _actor_label(actor, None),
            reason,
        )
        switch.save()
        audit_record(
            action="tenant.unkill",
            resource_type="tenant",
            resource_id=switch.tenant_id,
            actor=actor,
            before=before,
            after={"killed": False, "reason": reason, "live_bots_not_flat": live_bots_not_flat},
        )
    return switch


def _locked_global_switch() -> GlobalKillSwitch:
    GlobalKillSwitch.objects.bulk_create([GlobalKillSwitch(pk=GlobalKillSwitch.SINGLETON_ID)], ignore_conflicts=True)
    return GlobalKillSwitch.objects.select_for_update().get(pk=GlobalKillSwitch.SINGLETON_ID)


def system_kill(*, actor, reason: str) -> GlobalKillSwitch:
    """The platform-wide kill: every tenant's bots stop trading. Recorded as a platform event (no tenant)."""
    reason = _require_reason(reason)
    label = _actor_label(actor, None)
    with tenancy.tenant_context(None), transaction.atomic():
        switch = _locked_global_switch()
        if switch.killed:
            return switch
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = True, timezone.now(), label, reason
        switch.save()
        cancel = _request_cancel(scope=CancelRequest.Scope.GLOBAL, reason=reason, requested_by=label)
        audit_record(
            action="system.kill",
            resource_type="system",
            resource_id="global",
            actor=actor,
            tenant_id=None,
            before={"killed": False},
            after={"killed": True, "reason": reason, "cancel_request_id": cancel.id},
        )
    return switch


def system_unkill(*, actor, reason: str, live_bots_not_flat: list[dict] | None = None) -> GlobalKillSwitch:
    """Release the platform's switch; tenant switches and bot kills stay as they are. ``live_bots_not_flat``
    (every tenant's, oversight.rearm) goes into the audit event."""
    reason = _require_reason(reason)
    with tenancy.tenant_context(None), transaction.atomic():
        switch = _locked_global_switch()
        if not switch.killed:
            raise _illegal("The platform", "NOT_KILLED", "UNKILL", "The platform is not killed.")
        before = {"killed": True, "reason": switch.reason}
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = (
            False,
            timezone.now(),
            _actor_label(actor, None),
            reason,
        )
        switch.save()
        audit_record(
            action="system.unkill",
            resource_type="system",
            resource_id="global",
            actor=actor,
            tenant_id=None,
            before=before,
            after={"killed": False, "reason": reason, "live_bots_not_flat": live_bots_not_flat},
        )
    return switch
