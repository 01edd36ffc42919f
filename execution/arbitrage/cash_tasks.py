"""Thin tasks of the LIVE scanners' cash: beat fans the sync out per tenant; each run reads the balances of the
spot venues the tenant's LIVE spot scanners trade at (execution.arbitrage.services.sync_live_scanner_cash). Safe
to run twice: it sets, never adds."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import active_tenant_ids


@shared_task(name="execution.sync_live_cash", ignore_result=True)
def sync_live_cash() -> int:
    """Beat's entry point: one sync per active tenant on the default queue."""
    return fan_out_per_tenant(
        sync_live_cash_for_tenant,
        tenant_ids=active_tenant_ids(),
        queue="default",
        expires=settings.ARB_LIVE_CASH_SYNC_SECONDS * 0.9,
    )


@shared_task(name="execution.sync_live_cash_for_tenant", base=TenantTask, acks_late=True)
def sync_live_cash_for_tenant(*, tenant_id: int) -> dict:
    from execution.arbitrage.services import sync_live_scanner_cash

    return sync_live_scanner_cash(actor_name="beat")
