"""Jobs: create, cancel, retry, and the claim-run-finish cycle a worker performs."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bots import job_handlers
from bots.models import Bot, Job
from bots.services.common import _actor_label, _illegal
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.outbox import outbox_publish
from controlplane.services import audit_record
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)

JOB_TASK = "bots.run_job"


def _enqueue_job(job: Job, handler: job_handlers.JobHandler) -> None:
    task_id = str(uuid.uuid4())
    job.celery_task_id = task_id
    job.save(update_fields=["celery_task_id"])
    outbox_publish(
        task=JOB_TASK,
        kwargs={"job_id": job.id, "tenant_id": job.tenant_id},
        queue=handler.queue,
        task_id=task_id,
        tenant_id=job.tenant_id,
        what=f"job {job.id}",
    )


def _handler_for(kind: str) -> job_handlers.JobHandler:
    handler = job_handlers.job_handler(kind)
    if handler is None:
        raise ControlPlaneError(
            ErrorCode.JOB_HANDLER_MISSING, f"No handler is installed for {kind} jobs.", details={"kind": kind}
        )
    return handler


def job_create(
    *, kind: str, actor=None, actor_name: str | None = None, bot_id: int | None = None, params: dict | None = None
) -> Job:
    handler = _handler_for(kind)
    if handler.needs_bot and bot_id is None:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"bot_id": [f"{kind} jobs need a bot."]})
    with transaction.atomic():
        if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
            raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"bot_id": [f"No bot {bot_id}."]})
        job = Job.objects.create(
            kind=kind,
            bot_id=bot_id,
            params=params or {},
            trace_id=current_trace_id(),
            created_by=_actor_label(actor, actor_name),
            max_attempts=settings.JOB_MAX_ATTEMPTS,
        )
        _enqueue_job(job, handler)
        audit_record(
            action="job.create",
            resource_type="job",
            resource_id=job.id,
            actor=actor,
            actor_name=actor_name,
            after={"kind": kind, "bot_id": bot_id, "params": job.params},
        )
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
        audit_record(
            action="job.cancel",
            resource_type="job",
            resource_id=job.id,
            actor=actor,
            before={"status": before},
            after={"status": job.status},
        )
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
        audit_record(
            action="job.retry",
            resource_type="job",
            resource_id=job.id,
            actor=actor,
            before=before,
            after={"status": job.status},
        )
    return job


def job_execute(*, job_id: int) -> Job | None:
    """Claim a QUEUED job, run its handler, record the outcome. Safe to call twice: only one claim wins, and a
    job cancelled meanwhile keeps its CANCELLED status."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        )
        if claimed != 1:
            return None
        job = Job.objects.get(pk=job_id)
        audit_record(
            action="job.start",
            resource_type="job",
            resource_id=job.id,
            actor_name="worker",
            before={"status": Job.Status.QUEUED},
            after={"status": job.status, "attempts": job.attempts},
        )
    handler = job_handlers.job_handler(job.kind)
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
        job.save(update_fields=["status", "error_code", "error_message", "result", "finished_at", "lease_expires_at"])
        audit_record(
            action="job.finish",
            resource_type="job",
            resource_id=job.id,
            actor_name="worker",
            before={"status": Job.Status.RUNNING},
            after={"status": job.status, "error_code": job.error_code},
        )
    return job
