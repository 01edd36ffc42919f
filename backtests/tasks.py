"""Thin Celery tasks of the backtests app: parse, call a service."""

from celery import shared_task
from django.conf import settings

from backtests import matrix_chunks
from controlplane.celery import TenantTask, fan_out_per_tenant
from controlplane.selectors import active_tenant_ids


@shared_task(name="backtests.run_matrix_chunk", base=TenantTask, acks_late=True)
def run_matrix_chunk(*, matrix_id: int, first: int, stop: int, tenant_id: int) -> int:
    return matrix_chunks.run_chunk(matrix_id=matrix_id, first=first, stop=stop)


@shared_task(name="backtests.sweep_matrix_chunks")
def sweep_matrix_chunks() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in matrix_chunks.sweep_matrix_chunks_all_tenants().items()}


@shared_task(name="backtests.decay_all_tenants")
def decay_all_tenants() -> int:
    """Beat: one decay re-backtest sweep per active tenant (it starts new backtest runs)."""
    return fan_out_per_tenant(
        decay_rebacktests,
        tenant_ids=active_tenant_ids(),
        queue="backtests",
        expires=settings.BACKTEST_DECAY_INTERVAL_SECONDS * 0.9,
    )


@shared_task(name="backtests.decay_rebacktests", base=TenantTask)
def decay_rebacktests(*, tenant_id: int) -> list[int]:
    from backtests import runs

    return runs.decay_rebacktest_sweep()
