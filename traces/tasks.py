"""Thin Celery tasks of the trace store."""

from celery import shared_task

from traces.partitions import trace_partitions_maintain
from traces.summaries import trace_days_summarize_closed


@shared_task(name="traces.maintain_partitions")
def maintain_partitions() -> dict:
    return trace_partitions_maintain().as_dict()


@shared_task(name="traces.summarize_closed_days")
def summarize_closed_days() -> dict:
    return {str(tenant_id): days for tenant_id, days in trace_days_summarize_closed().items()}
