"""Thin Celery tasks of the judging layer: parse, call a service. Their names are the ones beat and workers have
always used (``execution.reconcile_live_*``, ``backtests.autonomy_scores*``): names are the contract, not paths."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from controlplane.celery import TenantTask
from oversight import autonomy, reconcile


@shared_task(name="execution.reconcile_live_all_tenants", ignore_result=True)
def reconcile_live_all_tenants() -> int:
    from controlplane.models import Tenant

    tenant_ids = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("id", flat=True))
    expires = settings.LIVE_RECONCILE_INTERVAL_SECONDS * 0.9
    for tenant_id in tenant_ids:
        reconcile_live_bots.apply_async(kwargs={"tenant_id": tenant_id}, expires=expires)
    return len(tenant_ids)


@shared_task(name="execution.reconcile_live_bots", base=TenantTask)
def reconcile_live_bots(*, tenant_id: int) -> dict:
    """Reconcile every RUNNING LIVE bot of the tenant against its venue (the endpoint's service)."""
    return reconcile.reconcile_running_live_bots()


@shared_task(name="backtests.autonomy_scores_all_tenants")
def autonomy_scores_all_tenants() -> int:
    """Beat: one scoring task per tenant (each runs inside its tenant)."""
    from controlplane.models import Tenant

    tenant_ids = list(Tenant.objects.values_list("id", flat=True))
    for tenant_id in tenant_ids:
        autonomy_scores.apply_async(kwargs={"tenant_id": tenant_id}, queue="backtests")
    return len(tenant_ids)


@shared_task(name="backtests.autonomy_scores", base=TenantTask)
def autonomy_scores(*, tenant_id: int) -> dict:
    return {str(bot_id): tier for bot_id, tier in autonomy.autonomy_sweep().items()}
