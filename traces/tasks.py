"""Thin Celery tasks of the trace store."""

from celery import shared_task

from traces.partitions import trace_partitions_maintain


@shared_task(name="traces.maintain_partitions")
def maintain_partitions() -> dict:
    return trace_partitions_maintain().as_dict()
