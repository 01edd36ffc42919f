"""Thin Celery tasks of the OMS: send a tenant's pending intents, and the recovery sweeps. Each is safe to run
twice (claims use SKIP LOCKED; recovery looks orders up, never re-sends)."""

from __future__ import annotations

from celery import shared_task, signals
from django.conf import settings

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import all_tenant_ids
from execution.orders import cancels, oms, recovery


@shared_task(name="execution.oms_process", base=TenantTask, queue="oms", acks_late=True, ignore_result=True)
def oms_process(*, tenant_id: int, limit: int = 500) -> int:
    """Send the tenant's PENDING intents, and finish cancel requests whose hook did not run (claims use SKIP LOCKED)."""
    cancels.process_pending_cancel_requests()
    return oms.process_pending_intents(limit=limit)


@shared_task(name="execution.oms_recover_all_tenants", ignore_result=True)
def oms_recover_all_tenants() -> int:
    """Beat's entry point (and the worker's at start): one recovery sweep per tenant, on the oms queue. Suspended
    tenants too: an order sent but never recorded is looked up whatever became of its tenant."""
    return fan_out_per_tenant(
        oms_recover, tenant_ids=all_tenant_ids(), queue="oms", expires=settings.OMS_RECOVERY_INTERVAL_SECONDS * 0.9
    )


@shared_task(name="execution.oms_recover", base=TenantTask, acks_late=True)
def oms_recover(*, tenant_id: int) -> dict:
    """Resolve orders whose send was never recorded (looked up, never re-sent), then record live fills."""
    return {"unacknowledged": recovery.resolve_unacknowledged_orders(), "fills": recovery.sync_live_fills()}


@signals.worker_ready.connect
def _recover_at_worker_start(sender=None, **_):
    """A worker that serves the oms queue starts with a recovery sweep: a crash of the previous one may have left
    orders sent but unrecorded. Only an enqueue here; the sweep runs as an ordinary task."""
    queues = getattr(getattr(sender, "app", None), "amqp", None)
    consuming = set(queues.queues.consume_from or {}) if queues is not None else set()
    if "oms" in consuming:
        oms_recover_all_tenants.apply_async(queue="oms", expires=settings.OMS_RECOVERY_INTERVAL_SECONDS)
