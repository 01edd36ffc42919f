"""Every state change of a bot's life: one function each, locking its row, checking the transition is legal and
writing the audit event in the same transaction. Views, admin actions, tasks and commands call these."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from bots import hooks, jobs, selectors
from bots.gates import promotion_gates, raise_if_integrations_blocked
from bots.models import (
    STAGE_ORDER,
    Bot,
    CancelRequest,
    GlobalKillSwitch,
    Job,
    Reconciliation,
    Runner,
    Stage,
    TenantKillSwitch,
)
from bots.strategies import StrategyParameterError, UnknownStrategy, get_strategy
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import Tenant
from controlplane.services import audit_record
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)

# Changing any of these on a bot past LAB invalidates the evidence its stage rests on.
CONFIG_FIELDS = ("strategy", "parameters", "instruments", "venue", "data_source")
EDITABLE_FIELDS = (*CONFIG_FIELDS, "name", "risk_limits")


def _actor_label(actor, actor_name: str | None) -> str:
    if actor_name:
        return actor_name
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return "system"


def _illegal(resource: str, current: str, requested: str, why: str = "") -> ControlPlaneError:
    return ControlPlaneError(
        ErrorCode.ILLEGAL_TRANSITION,
        f"{resource} cannot go from {current} to {requested}." + (f" {why}" if why else ""),
        details={"current": current, "requested": requested},
    )


def _locked_bot(bot_id: int) -> Bot:
    bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
    if bot is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
    return bot


def _validated_config(strategy_name: str, parameters: Any) -> tuple[dict, str]:
    try:
        strategy = get_strategy(strategy_name)
    except UnknownStrategy as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"strategy": [str(exc.args[0])]}) from None
    try:
        clean = strategy.validate(parameters)
    except StrategyParameterError as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"parameters": exc.errors}) from None
    return clean, strategy.parameters_hash(clean)


# --- bots -------------------------------------------------------------------------------------------------


def bot_create(
    *, actor, name: str, strategy: str, parameters: Mapping[str, Any] | None = None, instruments: list[str],
    venue: str = "sim", data_source: str = "imported", risk_limits: dict | None = None, starter_key: str = "",
    actor_name: str | None = None,
) -> Bot:
    clean, params_hash = _validated_config(strategy, parameters or {})
    with transaction.atomic():
        if Bot.objects.filter(name=name).exists():
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR,
                                    details={"name": [f"A bot named {name!r} already exists in this tenant."]})
        bot = Bot.objects.create(
            name=name, strategy=strategy, parameters=clean, parameters_hash=params_hash, instruments=instruments,
            venue=venue, data_source=data_source, risk_limits=risk_limits or {}, starter_key=starter_key,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(action="bot.create", resource_type="bot", resource_id=bot.id, actor=actor,
                     actor_name=actor_name, after=bot.snapshot())
    return bot


def bot_update(*, bot_id: int, actor, changes: Mapping[str, Any]) -> Bot:
    """Edit a bot. A configuration change past LAB sends it back to LAB: its evidence was for the old one."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR,
                                details={name: ["This field cannot be changed."] for name in sorted(unknown)})
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if bot.stage == Stage.RETIRED:
            raise ControlPlaneError(ErrorCode.BOT_RETIRED, f"Bot {bot.name} is retired and cannot change.")
        before = bot.snapshot()
        if "name" in changes and changes["name"] != bot.name and Bot.objects.filter(name=changes["name"]).exists():
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR,
                                    details={"name": [f"A bot named {changes['name']!r} already exists."]})
        strategy = changes.get("strategy", bot.strategy)
        parameters = changes.get("parameters", bot.parameters if strategy == bot.strategy else {})
        clean, params_hash = _validated_config(strategy, parameters)
        for field, value in changes.items():
            setattr(bot, field, value)
        bot.strategy, bot.parameters, bot.parameters_hash = strategy, clean, params_hash
        config_changed = any(before[field] != getattr(bot, field) for field in CONFIG_FIELDS)
        if config_changed and bot.stage != Stage.LAB:
            bot.stage = Stage.LAB
            bot.live_approved_by, bot.live_approved_at = None, None
        bot.save()
        after = bot.snapshot()
        audit_record(action="bot.update", resource_type="bot", resource_id=bot.id, actor=actor,
                     before=before, after=after)
        if before["stage"] != after["stage"]:
            audit_record(action="bot.demote", resource_type="bot", resource_id=bot.id, actor=actor,
                         before={"stage": before["stage"]},
                         after={"stage": after["stage"], "reason": "configuration changed"})
    return bot


def _next_stage(stage: str) -> str | None:
    if stage not in STAGE_ORDER:
        return None
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


def bot_promote(*, bot_id: int, actor, to_stage: str | None = None) -> Bot:
    """One step up the ladder, if every gate of the new stage passes."""
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        following = _next_stage(bot.stage)
        requested = to_stage or following or "(none)"
        if following is None or requested != following:
            why = f"The next stage is {following}." if following else "There is no stage above it."
            raise _illegal(f"Bot {bot.name}", bot.stage, requested, why)
        results = promotion_gates(bot, requested, actor=actor)
        failing = [gate.as_dict() for gate in results if not gate.passed]
        if failing:
            raise ControlPlaneError(
                ErrorCode.PROMOTION_GATE_FAILED,
                f"Bot {bot.name} cannot be promoted to {requested}: "
                + "; ".join(f"{gate['gate']}: {gate['message']}" for gate in failing),
                suggested_fix=failing[0]["suggested_fix"],
                details={"current": bot.stage, "requested": requested, "gates": failing},
            )
        before = bot.stage
        bot.stage = requested
        update_fields = ["stage", "updated_at"]
        if requested == Stage.LIVE:
            bot.live_approved_by, bot.live_approved_at = actor, timezone.now()
            update_fields += ["live_approved_by", "live_approved_at"]
        bot.save(update_fields=update_fields)
        audit_record(action="bot.promote", resource_type="bot", resource_id=bot.id, actor=actor,
                     before={"stage": before},
                     after={"stage": requested, "gates": [gate.as_dict() for gate in results]})
    return bot


def bot_demote(*, bot_id: int, actor=None, actor_name: str | None = None, to_stage: str | None = None,
               reason: str = "") -> Bot:
    """Down the ladder (or to RETIRED): always allowed, no gates. The supervisor and the watchdog use it."""
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if bot.stage == Stage.RETIRED:
            raise _illegal(f"Bot {bot.name}", bot.stage, to_stage or "(lower)", "A retired bot stays retired.")
        index = STAGE_ORDER.index(bot.stage)
        requested = to_stage or (STAGE_ORDER[index - 1] if index > 0 else "(none)")
        lower = requested == Stage.RETIRED or (requested in STAGE_ORDER and STAGE_ORDER.index(requested) < index)
        if not lower:
            raise _illegal(f"Bot {bot.name}", bot.stage, requested, "Demotion goes to a lower stage or RETIRED.")
        before = bot.stage
        bot.stage = requested
        bot.live_approved_by, bot.live_approved_at = None, None
        bot.save(update_fields=["stage", "live_approved_by", "live_approved_at", "updated_at"])
        audit_record(action="bot.demote", resource_type="bot", resource_id=bot.id, actor=actor,
                     actor_name=actor_name, before={"stage": before}, after={"stage": requested, "reason": reason})
    return bot


# --- kill switches ------------------------------------------------------------------------------------------


def _request_cancel(*, scope: str, reason: str, requested_by: str, bot: Bot | None = None,
                    tenant_id: int | None = None) -> CancelRequest:
    """Record what the OMS must cancel, and tell the registered cancel hooks once it is committed."""
    cancel = CancelRequest.objects.create(
        tenant_id=tenant_id, scope=scope, bot=bot, reason=reason, requested_by=requested_by,
        trace_id=current_trace_id(),
    )

    def notify():
        for hook in hooks.cancel_hooks():
            try:
                hook(cancel_request_id=cancel.id, scope=scope, tenant_id=tenant_id, bot_id=bot.id if bot else None)
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
        cancel = _request_cancel(scope=CancelRequest.Scope.BOT, reason=reason, requested_by=label, bot=bot,
                                 tenant_id=bot.tenant_id)
        audit_record(action="bot.kill", resource_type="bot", resource_id=bot.id, actor=actor,
                     actor_name=actor_name, before={"killed": False},
                     after={"killed": True, "reason": reason, "cancel_request_id": cancel.id})
    return bot


class PositionsDecision:
    KEEP_POSITIONS = "keep_positions"
    FLATTENED_AT_VENUE = "flattened_at_venue"
    CHOICES = (KEEP_POSITIONS, FLATTENED_AT_VENUE)


def bot_unkill(*, bot_id: int, actor, reason: str, positions_decision: str | None = None) -> Bot:
    """Release a killed bot: needs a reason and either a flat, matching reconciliation made after the kill or
    the operator's explicit decision about its positions (recorded in the audit event)."""
    reason = _require_reason(reason)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        if not bot.killed:
            raise _illegal(f"Bot {bot.name}", "NOT_KILLED", "UNKILL", "The bot is not killed.")
        flat_reconcile = Reconciliation.objects.filter(
            bot=bot, created_at__gte=bot.killed_at, status=Reconciliation.Status.MATCHED, is_flat=True,
        ).order_by("-id").first()
        if positions_decision is None and flat_reconcile is None:
            raise ControlPlaneError(ErrorCode.UNKILL_NEEDS_RECONCILE, details={"bot_id": bot.id})
        before = {"killed": True, "killed_at": bot.killed_at.isoformat(), "kill_reason": bot.kill_reason}
        bot.killed, bot.killed_at, bot.killed_by, bot.kill_reason = False, None, "", ""
        bot.save(update_fields=["killed", "killed_at", "killed_by", "kill_reason", "updated_at"])
        audit_record(action="bot.unkill", resource_type="bot", resource_id=bot.id, actor=actor, before=before,
                     after={"killed": False, "reason": reason, "positions_decision": positions_decision,
                            "reconciliation_id": flat_reconcile.id if flat_reconcile else None})
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
        cancel = _request_cancel(scope=CancelRequest.Scope.TENANT, reason=reason, requested_by=label,
                                 tenant_id=switch.tenant_id)
        audit_record(action="tenant.kill", resource_type="tenant", resource_id=switch.tenant_id, actor=actor,
                     before={"killed": False}, after={"killed": True, "reason": reason,
                                                     "cancel_request_id": cancel.id})
    return switch


def tenant_unkill(*, actor, reason: str) -> TenantKillSwitch:
    reason = _require_reason(reason)
    with transaction.atomic():
        switch = _locked_tenant_switch()
        if not switch.killed:
            raise _illegal("The tenant", "NOT_KILLED", "UNKILL", "The tenant is not killed.")
        before = {"killed": True, "reason": switch.reason}
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = (
            False, timezone.now(), _actor_label(actor, None), reason)
        switch.save()
        audit_record(action="tenant.unkill", resource_type="tenant", resource_id=switch.tenant_id, actor=actor,
                     before=before, after={"killed": False, "reason": reason})
    return switch


def _locked_global_switch() -> GlobalKillSwitch:
    GlobalKillSwitch.objects.bulk_create([GlobalKillSwitch(pk=GlobalKillSwitch.SINGLETON_ID)],
                                         ignore_conflicts=True)
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
        audit_record(action="system.kill", resource_type="system", resource_id="global", actor=actor,
                     tenant_id=None, before={"killed": False},
                     after={"killed": True, "reason": reason, "cancel_request_id": cancel.id})
    return switch


def system_unkill(*, actor, reason: str) -> GlobalKillSwitch:
    reason = _require_reason(reason)
    with tenancy.tenant_context(None), transaction.atomic():
        switch = _locked_global_switch()
        if not switch.killed:
            raise _illegal("The platform", "NOT_KILLED", "UNKILL", "The platform is not killed.")
        before = {"killed": True, "reason": switch.reason}
        switch.killed, switch.changed_at, switch.changed_by, switch.reason = (
            False, timezone.now(), _actor_label(actor, None), reason)
        switch.save()
        audit_record(action="system.unkill", resource_type="system", resource_id="global", actor=actor,
                     tenant_id=None, before=before, after={"killed": False, "reason": reason})
    return switch


# --- reconcile --------------------------------------------------------------------------------------------

POSITION_TOLERANCE = 1e-9


def bot_reconcile(*, bot_id: int, actor=None, actor_name: str | None = None) -> Reconciliation:
    """Compare the bot's positions with its venue's through the venue's registered position source. A
    difference flags the bot (blocking starts and orders); a match clears the flag. No source: refused."""
    label = _actor_label(actor, actor_name)
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        source = hooks.position_source_for(bot.venue)
        if source is None:
            raise ControlPlaneError(
                ErrorCode.RECONCILE_SOURCE_MISSING,
                f"No position source is installed for venue {bot.venue!r}; bot {bot.name} was not compared.",
                details={"venue": bot.venue},
            )
        snapshot = source(bot=bot)
        instruments = sorted(set(snapshot.internal) | set(snapshot.venue))
        differences = {
            symbol: {"internal": snapshot.internal.get(symbol, 0.0), "venue": snapshot.venue.get(symbol, 0.0)}
            for symbol in instruments
            if abs(snapshot.internal.get(symbol, 0.0) - snapshot.venue.get(symbol, 0.0)) > POSITION_TOLERANCE
        }
        is_flat = all(abs(q) <= POSITION_TOLERANCE for q in (*snapshot.internal.values(), *snapshot.venue.values()))
        result = Reconciliation.objects.create(
            bot=bot, venue=bot.venue,
            status=Reconciliation.Status.MISMATCH if differences else Reconciliation.Status.MATCHED,
            internal_positions=snapshot.internal, venue_positions=snapshot.venue, differences=differences,
            is_flat=is_flat, requested_by=label, trace_id=current_trace_id(),
        )
        flagged_before = bot.reconcile_mismatch
        bot.reconcile_mismatch = bool(differences)
        bot.save(update_fields=["reconcile_mismatch", "updated_at"])
        audit_record(action="bot.reconcile", resource_type="bot", resource_id=bot.id, actor=actor,
                     actor_name=actor_name, before={"reconcile_mismatch": flagged_before},
                     after={"reconcile_mismatch": bot.reconcile_mismatch, "reconciliation_id": result.id,
                            "status": result.status, "differences": differences})
    return result


# --- runners ----------------------------------------------------------------------------------------------


def _refuse_unrunnable(bot: Bot) -> None:
    """Safe-start: every reason a bot may not run, each with its own code."""
    block = selectors.trading_block(bot)
    if block is not None:
        raise block
    raise_if_integrations_blocked(bot)


def runner_start(*, bot_id: int, actor=None, actor_name: str | None = None) -> Runner:
    with transaction.atomic():
        bot = _locked_bot(bot_id)
        active = selectors.active_runner(bot.id)
        if active is not None:
            raise ControlPlaneError(ErrorCode.RUNNER_ALREADY_ACTIVE,
                                    details={"runner_id": active.id, "status": active.status})
        _refuse_unrunnable(bot)
        now = timezone.now()
        runner = Runner.objects.create(
            bot=bot, status=Runner.Status.RUNNING, started_by=_actor_label(actor, actor_name), started_at=now,
            last_heartbeat_at=now, trace_id=current_trace_id(),
        )
        audit_record(action="runner.start", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, after={"bot_id": bot.id, "status": runner.status})
    return runner


def _locked_runner(runner_id: int) -> tuple[Bot, Runner]:
    """Lock the bot, then the runner: the one lock order of every runner transition."""
    bot_id = Runner.objects.filter(pk=runner_id).values_list("bot_id", flat=True).first()
    if bot_id is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No runner {runner_id} in this tenant.")
    bot = _locked_bot(bot_id)
    return bot, Runner.objects.select_for_update().get(pk=runner_id)


def runner_stop(*, runner_id: int, actor=None, actor_name: str | None = None, reason: str = "") -> Runner:
    with transaction.atomic():
        _, runner = _locked_runner(runner_id)
        if runner.status in Runner.TERMINAL_STATUSES:
            raise _illegal(f"Runner {runner.id}", runner.status, Runner.Status.STOPPED)
        before = runner.status
        runner.status, runner.stopped_at = Runner.Status.STOPPED, timezone.now()
        runner.stop_reason = reason or f"stopped by {_actor_label(actor, actor_name)}"
        runner.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_record(action="runner.stop", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, before={"status": before},
                     after={"status": runner.status, "reason": runner.stop_reason})
    return runner


def runner_restart(*, runner_id: int, actor=None, actor_name: str | None = None) -> Runner:
    """Run the same runner again, after the same safe-start checks as a start."""
    with transaction.atomic():
        bot, runner = _locked_runner(runner_id)
        if runner.status in (Runner.Status.STARTING, Runner.Status.STOPPING):
            raise _illegal(f"Runner {runner.id}", runner.status, Runner.Status.RUNNING, "Wait until it settles.")
        active = selectors.active_runner(bot.id)
        if active is not None and active.id != runner.id:
            raise ControlPlaneError(ErrorCode.RUNNER_ALREADY_ACTIVE,
                                    details={"runner_id": active.id, "status": active.status})
        _refuse_unrunnable(bot)
        before = runner.status
        now = timezone.now()
        runner.status, runner.last_heartbeat_at, runner.stopped_at, runner.stop_reason = (
            Runner.Status.RUNNING, now, None, "")
        runner.restart_count += 1
        runner.trace_id = current_trace_id()
        runner.save(update_fields=["status", "last_heartbeat_at", "stopped_at", "stop_reason", "restart_count",
                                   "trace_id"])
        audit_record(action="runner.restart", resource_type="runner", resource_id=runner.id, actor=actor,
                     actor_name=actor_name, before={"status": before},
                     after={"status": runner.status, "restart_count": runner.restart_count})
    return runner


def runner_heartbeat(*, runner_id: int, ticked_at: datetime | None = None) -> bool:
    """The tick's proof of life (issue 5 calls it per runner per tick). False if the runner is not RUNNING."""
    now = timezone.now()
    fields: dict[str, Any] = {"last_heartbeat_at": now}
    if ticked_at is not None:
        fields["last_tick_at"] = ticked_at
    return Runner.objects.filter(pk=runner_id, status=Runner.Status.RUNNING).update(**fields) == 1


# --- jobs -------------------------------------------------------------------------------------------------


def _enqueue_job(job: Job, handler: jobs.JobHandler) -> None:
    task_id = str(uuid.uuid4())
    job.celery_task_id = task_id
    job.save(update_fields=["celery_task_id"])
    job_id, tenant_id = job.id, job.tenant_id

    def send():
        from bots.tasks import run_job

        run_job.apply_async(kwargs={"job_id": job_id, "tenant_id": tenant_id}, queue=handler.queue, task_id=task_id)

    transaction.on_commit(send)


def _handler_for(kind: str) -> jobs.JobHandler:
    handler = jobs.job_handler(kind)
    if handler is None:
        raise ControlPlaneError(ErrorCode.JOB_HANDLER_MISSING, f"No handler is installed for {kind} jobs.",
                                details={"kind": kind})
    return handler


def job_create(*, kind: str, actor=None, actor_name: str | None = None, bot_id: int | None = None,
               params: dict | None = None) -> Job:
    handler = _handler_for(kind)
    if handler.needs_bot and bot_id is None:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"bot_id": [f"{kind} jobs need a bot."]})
    with transaction.atomic():
        if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"bot_id": [f"No bot {bot_id}."]})
        job = Job.objects.create(kind=kind, bot_id=bot_id, params=params or {}, trace_id=current_trace_id(),
                                 created_by=_actor_label(actor, actor_name),
                                 max_attempts=settings.JOB_MAX_ATTEMPTS)
        _enqueue_job(job, handler)
        audit_record(action="job.create", resource_type="job", resource_id=job.id, actor=actor,
                     actor_name=actor_name, after={"kind": kind, "bot_id": bot_id, "params": job.params})
    return job


def job_cancel(*, job_id: int, actor) -> Job:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No job {job_id} in this tenant.")
        if job.status in Job.TERMINAL_STATUSES:
            raise _illegal(f"Job {job.id}", job.status, Job.Status.CANCELLED)
        before = job.status
        job.status, job.finished_at, job.lease_expires_at = Job.Status.CANCELLED, timezone.now(), None
        job.save(update_fields=["status", "finished_at", "lease_expires_at"])
        audit_record(action="job.cancel", resource_type="job", resource_id=job.id, actor=actor,
                     before={"status": before}, after={"status": job.status})
    return job


def job_retry(*, job_id: int, actor) -> Job:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No job {job_id} in this tenant.")
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise _illegal(f"Job {job.id}", job.status, Job.Status.QUEUED, "Only failed or cancelled jobs retry.")
        handler = _handler_for(job.kind)
        before = {"status": job.status, "error_code": job.error_code}
        job.status, job.error_code, job.error_message, job.result = Job.Status.QUEUED, "", "", None
        job.started_at, job.finished_at, job.lease_expires_at = None, None, None
        job.max_attempts = max(job.max_attempts, job.attempts + 1)
        job.save()
        _enqueue_job(job, handler)
        audit_record(action="job.retry", resource_type="job", resource_id=job.id, actor=actor, before=before,
                     after={"status": job.status})
    return job


def job_execute(*, job_id: int) -> Job | None:
    """Claim a QUEUED job, run its handler, record the outcome. Safe to call twice: only one claim wins, and a
    job cancelled meanwhile keeps its CANCELLED status."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING, started_at=now, attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        )
        if claimed != 1:
            return None
        job = Job.objects.get(pk=job_id)
        audit_record(action="job.start", resource_type="job", resource_id=job.id, actor_name="worker",
                     before={"status": Job.Status.QUEUED}, after={"status": job.status, "attempts": job.attempts})
    handler = jobs.job_handler(job.kind)
    try:
        if handler is None:
            raise ControlPlaneError(ErrorCode.JOB_HANDLER_MISSING, f"No handler is installed for {job.kind} jobs.")
        result, error = handler.run(job), None
    except ControlPlaneError as exc:
        result, error = None, (str(exc.code), exc.message)
    except Exception as exc:
        logger.exception("job handler crashed", extra={"job_id": job.id})
        result, error = None, (str(ErrorCode.INTERNAL_ERROR), f"{type(exc).__name__}: {exc}")
    return _job_finish(job_id=job.id, result=result, error=error)


def _job_finish(*, job_id: int, result: Any, error: tuple[str, str] | None) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != Job.Status.RUNNING:
            return job
        job.status = Job.Status.FAILED if error else Job.Status.SUCCEEDED
        job.error_code, job.error_message = error if error else ("", "")
        job.result, job.finished_at, job.lease_expires_at = result, timezone.now(), None
        job.save(update_fields=["status", "error_code", "error_message", "result", "finished_at",
                                "lease_expires_at"])
        audit_record(action="job.finish", resource_type="job", resource_id=job.id, actor_name="worker",
                     before={"status": Job.Status.RUNNING},
                     after={"status": job.status, "error_code": job.error_code})
    return job


def reconcile_job_handler(job: Job) -> dict:
    result = bot_reconcile(bot_id=job.bot_id, actor_name=f"job:{job.id}")
    return {"reconciliation_id": result.id, "status": result.status, "differences": result.differences}


# --- watchdog ---------------------------------------------------------------------------------------------


def _runner_mark_stale(*, runner_id: int, cutoff: datetime) -> Runner | None:
    with transaction.atomic():
        _, runner = _locked_runner(runner_id)
        if runner.status != Runner.Status.RUNNING or (runner.last_heartbeat_at and runner.last_heartbeat_at >= cutoff):
            return None
        runner.status = Runner.Status.STALE
        runner.save(update_fields=["status"])
        audit_record(action="runner.stale", resource_type="runner", resource_id=runner.id, actor_name="watchdog",
                     before={"status": Runner.Status.RUNNING},
                     after={"status": runner.status, "last_heartbeat_at":
                            runner.last_heartbeat_at.isoformat() if runner.last_heartbeat_at else None})
    return runner


def _runner_fail(*, runner_id: int, reason: str) -> Runner:
    with transaction.atomic():
        bot, runner = _locked_runner(runner_id)
        before = runner.status
        runner.status, runner.stopped_at, runner.stop_reason = Runner.Status.FAILED, timezone.now(), reason
        runner.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_record(action="runner.fail", resource_type="runner", resource_id=runner.id, actor_name="watchdog",
                     before={"status": before}, after={"status": runner.status, "reason": reason})
        if bot.stage == Stage.LIVE:
            bot_demote(bot_id=bot.id, actor_name="watchdog", to_stage=Stage.PAPER,
                       reason=f"runner {runner.id} failed: {reason}")
    return runner


def _watchdog_recover(runner: Runner) -> str:
    if runner.restart_count >= settings.RUNNER_MAX_RESTARTS:
        _runner_fail(runner_id=runner.id, reason=f"heartbeat stale after {runner.restart_count} restarts")
        return "failed"
    try:
        runner_restart(runner_id=runner.id, actor_name="watchdog")
    except ControlPlaneError as exc:
        _runner_fail(runner_id=runner.id, reason=f"restart refused: {exc.code}: {exc.message}")
        return "failed"
    return "restarted"


def _job_lease_expired(*, job_id: int, now: datetime) -> str | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != Job.Status.RUNNING or job.lease_expires_at is None or job.lease_expires_at >= now:
            return None
        handler = jobs.job_handler(job.kind)
        if handler is not None and handler.idempotent and job.attempts < job.max_attempts:
            job.status, job.started_at, job.lease_expires_at = Job.Status.QUEUED, None, None
            job.save(update_fields=["status", "started_at", "lease_expires_at"])
            _enqueue_job(job, handler)
            outcome = "requeued"
        else:
            job.status, job.finished_at, job.lease_expires_at = Job.Status.FAILED, now, None
            job.error_code = str(ErrorCode.JOB_LEASE_EXPIRED)
            job.error_message = f"Lease expired after {job.attempts} attempt(s)."
            job.save(update_fields=["status", "finished_at", "lease_expires_at", "error_code", "error_message"])
            outcome = "failed"
        audit_record(action=f"job.lease_expired.{outcome}", resource_type="job", resource_id=job.id,
                     actor_name="watchdog", before={"status": Job.Status.RUNNING},
                     after={"status": job.status, "attempts": job.attempts})
    return outcome


def watchdog_sweep_tenant(*, now: datetime | None = None) -> dict[str, int]:
    """Stale runners of the tenant in context are restarted up to RUNNER_MAX_RESTARTS, then FAILED (and their
    LIVE bot demoted to PAPER); jobs past their lease are re-queued (idempotent kinds) or FAILED."""
    now = now or timezone.now()
    counts = {"stale": 0, "restarted": 0, "failed": 0, "jobs_requeued": 0, "jobs_failed": 0}
    cutoff = now - timedelta(seconds=settings.RUNNER_HEARTBEAT_STALE_SECONDS)
    with transaction.atomic():
        candidate_ids = list(Runner.objects.filter(status=Runner.Status.RUNNING, last_heartbeat_at__lt=cutoff)
                             .values_list("id", flat=True))
        stale_ids = list(Runner.objects.filter(status=Runner.Status.STALE).values_list("id", flat=True))
        job_ids = list(Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now)
                       .values_list("id", flat=True))
    for runner_id in candidate_ids:
        if _runner_mark_stale(runner_id=runner_id, cutoff=cutoff) is not None:
            counts["stale"] += 1
            stale_ids.append(runner_id)
    for runner_id in stale_ids:
        with transaction.atomic():
            runner = Runner.objects.filter(pk=runner_id, status=Runner.Status.STALE).first()
        if runner is not None:
            counts[_watchdog_recover(runner)] += 1
    for job_id in job_ids:
        outcome = _job_lease_expired(job_id=job_id, now=now)
        if outcome:
            counts[f"jobs_{outcome}"] += 1
    return counts


def watchdog_sweep(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The watchdog over every tenant, one tenant context at a time (RLS shows each only its own rows)."""
    results = {}
    for tenant_id in Tenant.objects.order_by("id").values_list("id", flat=True):
        with tenancy.tenant_context(tenant_id):
            try:
                results[tenant_id] = watchdog_sweep_tenant(now=now)
            except Exception:
                logger.exception("watchdog sweep failed for a tenant", extra={"tenant_id": tenant_id})
    return results


# --- starter pack -----------------------------------------------------------------------------------------


def starter_pack_install(*, actor) -> tuple[list[Bot], list[Bot]]:
    """Create the starter bots this tenant lacks; (created, already there). Concurrent calls serialize on a
    per-tenant advisory lock, so twice is the same as once."""
    from bots.starter_pack import STARTER_BOTS

    tenant_id = tenancy.require_tenant_id()
    created, existing = [], []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('bots.starter_pack'), %s)", [int(tenant_id)])
        present = {bot.starter_key: bot for bot in Bot.objects.filter(starter_key__in=[s.key for s in STARTER_BOTS])}
        for spec in STARTER_BOTS:
            if spec.key in present:
                existing.append(present[spec.key])
                continue
            name = spec.name if not Bot.objects.filter(name=spec.name).exists() else f"{spec.name} ({spec.key})"
            created.append(bot_create(
                actor=actor, name=name, strategy=spec.strategy, parameters=spec.parameters,
                instruments=list(spec.instruments), risk_limits=dict(spec.risk_limits), starter_key=spec.key,
            ))
        if created:
            audit_record(action="bot.starter_pack", resource_type="tenant", resource_id=tenant_id, actor=actor,
                         after={"created": [bot.id for bot in created]})
    return created, existing
