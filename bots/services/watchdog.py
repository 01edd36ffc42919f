"""The watchdog: stale runners and expired job leases, swept per tenant."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bots import job_handlers
from bots.models import Job, Runner, Stage
from bots.services.bots import bot_demote
from bots.services.jobs import JOB_TASK, _enqueue_job
from bots.services.runners import _locked_runner, runner_restart
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import OutboxMessage
from controlplane.services import audit_record
from controlplane.selectors import all_tenant_ids

logger = logging.getLogger(__name__)


def _runner_mark_stale(*, runner_id: int, cutoff: datetime) -> Runner | None:
    with transaction.atomic():
        _, runner = _locked_runner(runner_id)
        if runner.status != Runner.Status.RUNNING or (runner.last_heartbeat_at and runner.last_heartbeat_at >= cutoff):
            return None
        runner.status = Runner.Status.STALE
        runner.save(update_fields=["status"])
        audit_record(
            action="runner.stale",
            resource_type="runner",
            resource_id=runner.id,
            actor_name="watchdog",
            before={"status": Runner.Status.RUNNING},
            after={
                "status": runner.status,
                "last_heartbeat_at": runner.last_heartbeat_at.isoformat() if runner.last_heartbeat_at else None,
            },
        )
    return runner


def _runner_fail(*, runner_id: int, reason: str) -> Runner:
    with transaction.atomic():
        bot, runner = _locked_runner(runner_id)
        before = runner.status
        runner.status, runner.stopped_at, runner.stop_reason = Runner.Status.FAILED, timezone.now(), reason
        runner.save(update_fields=["status", "stopped_at", "stop_reason"])
        audit_record(
            action="runner.fail",
            resource_type="runner",
            resource_id=runner.id,
            actor_name="watchdog",
            before={"status": before},
            after={"status": runner.status, "reason": reason},
        )
        if bot.stage == Stage.LIVE:
            bot_demote(
                bot_id=bot.id,
                actor_name="watchdog",
                to_stage=Stage.PAPER,
                reason=f"runner {runner.id} failed: {reason}",
            )
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
        handler = job_handlers.job_handler(job.kind)
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
        audit_record(
            action=f"job.lease_expired.{outcome}",
            resource_type="job",
            resource_id=job.id,
            actor_name="watchdog",
            before={"status": Job.Status.RUNNING},
            after={"status": job.status, "attempts": job.attempts},
        )
    return outcome


def _job_never_started(*, job_id: int, now: datetime) -> str | None:
    """A QUEUED job whose last dispatch the broker took over ``QUEUED_WORK_STALE_SECONDS`` ago and no worker has
    started (the message was lost with the broker's data, or nothing consumes its queue): sent again through the
    outbox while it has had fewer than ``max_attempts`` dispatches (a copy that does arrive is claimed once: the
    claim is a conditional update), else FAILED with ``JOB_NEVER_STARTED``."""
    cutoff = now - timedelta(seconds=settings.QUEUED_WORK_STALE_SECONDS)
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != Job.Status.QUEUED:
            return None
        dispatches = OutboxMessage.objects.filter(task=JOB_TASK, kwargs__job_id=job.id)
        last = dispatches.order_by("-id").first()
        if last is None or last.sent_at is None or last.sent_at >= cutoff:
            return None  # never dispatched this way, not sent yet (the relay's), or sent within the bound
        sent = dispatches.count()
        handler = job_handlers.job_handler(job.kind)
        if handler is not None and sent < job.max_attempts:
            _enqueue_job(job, handler)
            outcome = "redispatched"
        else:
            job.status, job.finished_at = Job.Status.FAILED, now
            job.error_code = str(ErrorCode.JOB_NEVER_STARTED)
            job.error_message = (
                f"Sent to its queue {sent} time(s), last at {last.sent_at.isoformat()}; "
                f"no worker started it within {settings.QUEUED_WORK_STALE_SECONDS}s."
            )
            job.save(update_fields=["status", "finished_at", "error_code", "error_message"])
            outcome = "failed"
        audit_record(
            action=f"job.never_started.{outcome}",
            resource_type="job",
            resource_id=job.id,
            actor_name="watchdog",
            before={"status": Job.Status.QUEUED, "dispatches": sent},
            after={"status": job.status, "error_code": job.error_code},
        )
    return outcome


def watchdog_sweep_tenant(*, now: datetime | None = None) -> dict[str, int]:
    """Stale runners of the tenant in context are restarted up to RUNNER_MAX_RESTARTS, then FAILED (and their
    LIVE bot demoted to PAPER); jobs past their lease are re-queued (idempotent kinds) or FAILED; jobs sent but
    never started within QUEUED_WORK_STALE_SECONDS are sent again or FAILED."""
    now = now or timezone.now()
    counts = {
        "stale": 0,
        "restarted": 0,
        "failed": 0,
        "jobs_requeued": 0,
        "jobs_failed": 0,
        "jobs_redispatched": 0,
        "jobs_never_started": 0,
    }
    queued_cutoff = now - timedelta(seconds=settings.QUEUED_WORK_STALE_SECONDS)
    cutoff = now - timedelta(seconds=settings.RUNNER_HEARTBEAT_STALE_SECONDS)
    with transaction.atomic():
        candidate_ids = list(
            Runner.objects.filter(status=Runner.Status.RUNNING, last_heartbeat_at__lt=cutoff).values_list(
                "id", flat=True
            )
        )
        stale_ids = list(Runner.objects.filter(status=Runner.Status.STALE).values_list("id", flat=True))
        job_ids = list(
            Job.objects.filter(status=Job.Status.RUNNING, lease_expires_at__lt=now).values_list("id", flat=True)
        )
        queued_ids = list(
            Job.objects.filter(status=Job.Status.QUEUED, created_at__lt=queued_cutoff).values_list("id", flat=True)
        )
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
    for job_id in queued_ids:
        outcome = _job_never_started(job_id=job_id, now=now)
        if outcome:
            counts["jobs_redispatched" if outcome == "redispatched" else "jobs_never_started"] += 1
    return counts


def watchdog_sweep(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The watchdog over every tenant, one tenant context at a time (RLS shows each only its own rows)."""
    results = {}
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            try:
                results[tenant_id] = watchdog_sweep_tenant(now=now)
            except Exception:
                logger.exception("watchdog sweep failed for a tenant", extra={"tenant_id": tenant_id})
    return results
