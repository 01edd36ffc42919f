"""Thin Celery tasks of the backtests app: parse, call a service."""

from celery import shared_task

from backtests import matrices
from controlplane.celery import TenantTask


@shared_task(name="backtests.run_matrix_chunk", base=TenantTask, acks_late=True)
def run_matrix_chunk(*, matrix_id: int, first: int, stop: int, tenant_id: int) -> int:
    return matrices.run_chunk(matrix_id=matrix_id, first=first, stop=stop)


@shared_task(name="backtests.sweep_matrix_chunks")
def sweep_matrix_chunks() -> dict:
    return {str(tenant_id): counts for tenant_id, counts in matrices.sweep_matrix_chunks_all_tenants().items()}


def _active_tenant_ids() -> list[int]:
    from controlplane.models import Tenant

    return list(Tenant.objects.values_list("id", flat=True))


@shared_task(name="backtests.decay_all_tenants")
def decay_all_tenants() -> int:
    tenant_ids = _active_tenant_ids()
    for tenant_id in tenant_ids:
        decay_rebacktests.apply_async(kwargs={"tenant_id": tenant_id}, queue="backtests")
    return len(tenant_ids)


@shared_task(name="backtests.decay_rebacktests", base=TenantTask)
def decay_rebacktests(*, tenant_id: int) -> list[int]:
    from backtests import services

    return services.decay_rebacktest_sweep()
