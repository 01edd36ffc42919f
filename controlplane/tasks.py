"""Thin Celery tasks of the control plane itself."""

from celery import shared_task

from controlplane import alerting, outbox
from controlplane.celery import TenantTask


@shared_task(name="controlplane.relay_outbox", ignore_result=True)
def relay_outbox() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in outbox.relay_outbox().items()}


@shared_task(name="controlplane.deliver_alert", base=TenantTask, ignore_result=True)
def deliver_alert(*, tenant_id: int, delivery_id: int) -> str | None:
    """The first send of a delivery, queued by its alert's commit; retries are the sweep's (safe to run twice: a
    delivery that is not due, or is already sent, is left alone)."""
    delivery = alerting.delivery_attempt(delivery_id=delivery_id)
    return delivery.status if delivery else None


@shared_task(name="controlplane.deliver_due_alerts", ignore_result=True)
def deliver_due_alerts() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in alerting.deliver_due_all_tenants().items()}
