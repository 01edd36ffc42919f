"""Thin Celery tasks of the OMS: parse, call the service. Safe to run twice (claims use SKIP LOCKED)."""

from __future__ import annotations

from celery import shared_task

from controlplane.celery import TenantTask
from execution import oms


@shared_task(name="execution.oms_process", base=TenantTask, queue="oms", acks_late=True, ignore_result=True)
def oms_process(*, tenant_id: int, limit: int = 500) -> int:
    """Send the tenant's PENDING intents, and finish cancel requests whose hook did not run."""
    oms.process_pending_cancel_requests()
    return oms.process_pending_intents(limit=limit)
