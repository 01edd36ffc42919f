"""Thin Celery tasks of the control plane itself."""

from celery import shared_task

from controlplane import outbox


@shared_task(name="controlplane.relay_outbox", ignore_result=True)
def relay_outbox() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in outbox.relay_outbox().items()}
