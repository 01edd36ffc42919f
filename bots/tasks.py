"""Thin Celery tasks of the lifecycle: parse, call a service."""

from celery import shared_task

from bots import services
from controlplane.celery import TenantTask


@shared_task(name="bots.run_job", base=TenantTask, acks_late=True)
def run_job(*, job_id: int, tenant_id: int) -> str | None:
    job = services.job_execute(job_id=job_id)
    return job.status if job is not None else None


@shared_task(name="bots.watchdog")
def watchdog() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in services.watchdog_sweep().items()}
