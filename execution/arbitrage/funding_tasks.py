"""Thin tasks of funding arbitrage: beat fans the funding booking out per tenant; each run follows the positions'
intents and books the funding times that passed. Safe to run twice (payments are unique per position and time)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import active_tenant_ids


@shared_task(name="execution.book_funding", ignore_result=True)
def book_funding() -> int:
    """Beat's entry point: one booking run per active tenant on the default queue."""
    return fan_out_per_tenant(
        book_funding_for_tenant,
        tenant_ids=active_tenant_ids(),
        queue="default",
        expires=settings.ARB_FUNDING_BOOK_SECONDS * 0.9,
    )


@shared_task(name="execution.book_funding_for_tenant", base=TenantTask, acks_late=True)
def book_funding_for_tenant(*, tenant_id: int) -> dict:
    from execution.arbitrage.funding_services import book_funding_payments, sync_funding_positions

    changed = sync_funding_positions(actor_name="beat")
    return {"positions_changed": len(changed), **book_funding_payments(actor_name="beat").as_dict()}
