"""Thin Celery tasks of the judging layer: parse, call a service. Their names are the ones beat and workers have
always used (``execution.reconcile_live_*``, ``backtests.autonomy_scores*``): names are the contract, not paths."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import all_tenant_ids
from oversight import autonomy, reconcile


@shared_task(name="execution.reconcile_live_all_tenants", ignore_result=True)
def reconcile_live_all_tenants() -> int:
    """Suspended tenants too: reconcile only reads the venue and flags a mismatch (which blocks orders), and a
    suspended tenant's live positions are still at the venue."""
    return fan_out_per_tenant(
        reconcile_live_bots,
        tenant_ids=all_tenant_ids(),
        queue="default",
        expires=settings.LIVE_RECONCILE_INTERVAL_SECONDS * 0.9,
    )


@shared_task(name="execution.reconcile_live_bots", base=TenantTask)
def reconcile_live_bots(*, tenant_id: int) -> dict:
    """Reconcile every RUNNING LIVE bot of the tenant against its venue (the endpoint's service)."""
    return reconcile.reconcile_running_live_bots()


@shared_task(name="backtests.autonomy_scores_all_tenants")
def autonomy_scores_all_tenants() -> int:
    """Beat: one scoring task per tenant, suspended ones included: a score only reads and sets a tier, and a
    decayed live bot must lose its tier whatever its tenant's status."""
    return fan_out_per_tenant(
        autonomy_scores,
        tenant_ids=all_tenant_ids(),
        queue="backtests",
        expires=settings.AUTONOMY_SCORE_INTERVAL_SECONDS * 0.9,
    )


@shared_task(name="backtests.autonomy_scores", base=TenantTask)
def autonomy_scores(*, tenant_id: int) -> dict:
    return {str(bot_id): tier for bot_id, tier in autonomy.autonomy_sweep().items()}


@shared_task(name="oversight.supervisor_sweep", ignore_result=True)
def supervisor_sweep() -> dict | None:
    """Beat, every SUPERVISOR_INTERVAL_SECONDS: the sweep itself holds the lock, so a second run returns at once."""
    from oversight.supervisor.sweep import supervisor_sweep as sweep

    return sweep()
