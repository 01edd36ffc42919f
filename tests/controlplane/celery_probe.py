"""Tasks the delivery tests load into a real worker (celery worker --include tests.controlplane.celery_probe)."""

from celery import shared_task
from django.db import connection, transaction

from controlplane.celery import TenantTask
from controlplane.trace import current_trace_id


@shared_task(name="tests.probe_trace")
def probe_trace():
    return current_trace_id()


@shared_task(name="tests.probe_chain", bind=True)
def probe_chain(self):
    """Enqueues a task from a task; the child must carry this task's trace id."""
    child = probe_trace.apply_async(queue=self.request.delivery_info["routing_key"])
    return {"trace_id": current_trace_id(), "child_id": child.id}


@shared_task(name="tests.probe_tenant", base=TenantTask)
def probe_tenant(*, tenant_id):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_tenant_id()")
        return cursor.fetchone()[0]


@shared_task(name="tests.probe_backend_pid")
def probe_backend_pid():
    """The Postgres backend serving this task's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@shared_task(name="tests.probe_lose_connection")
def probe_lose_connection():
    """The task's connection dies under it (the server ends the session, as a database restart would)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
