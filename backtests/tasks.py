"""Thin Celery tasks of the backtests app: parse, call a service."""

from celery import shared_task

from backtests import matrices
from controlplane.celery import TenantTask


@shared_task(name="backtests.run_matrix_chunk", base=TenantTask, acks_late=True)
def run_matrix_chunk(*, matrix_id: int, first: int, stop: int, tenant_id: int) -> int:
    return matrices.run_chunk(matrix_id=matrix_id, first=first, stop=stop)
