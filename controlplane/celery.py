"""The Celery app: JSON only, queues per kind of work, trace ids and tenants carried into every task."""

from __future__ import annotations

import os
from collections.abc import Iterable

from celery import Celery, Task, signals
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("controlplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
QUEUES = ("ticks", "oms", "backtests", "verify", "default")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.autodiscover_tasks()

TRACE_HEADER = "trace_id"


class TenantTask(Task):
    """Base of every task that touches tenant data: it must be called with ``tenant_id=`` and runs inside it."""

    def __call__(self, *args, **kwargs):
        from controlplane.tenancy import tenant_context

        tenant_id = kwargs.get("tenant_id")
        if tenant_id is None:
            raise TypeError(f"task {self.name} must be called with tenant_id=")
        with tenant_context(tenant_id):
            return super().__call__(*args, **kwargs)


def fan_out_per_tenant(task: Task, *, tenant_ids: Iterable[int], queue: str, expires: float, **kwargs) -> int:
    """Send ``task`` once per tenant (with ``tenant_id=`` and ``kwargs``) to ``queue``, each message expiring after
    ``expires`` seconds: a beat fan-out whose messages wait past their interval is dropped, not piled up behind the
    next one. The caller names the tenants (``controlplane.selectors.active_tenant_ids`` or ``all_tenant_ids``)
    and the queue, so each fan-out says which tenants it serves and where. Returns how many were sent."""
    sent = 0
    for tenant_id in tenant_ids:
        task.apply_async(kwargs={**kwargs, "tenant_id": tenant_id}, queue=queue, expires=expires)
        sent += 1
    return sent


@signals.before_task_publish.connect
def _carry_trace_id(headers=None, **_):
    """Every task published from a request or a task carries that trace id; one published where none is bound
    (beat, a shell) gets a fresh id of its own. Binding one in the publisher instead would stamp the same id on
    every task beat sends until it restarts, and a trace id would no longer name one tick."""
    from controlplane.trace import bound_trace_id, new_trace_id

    if headers is not None and TRACE_HEADER not in headers:
        headers[TRACE_HEADER] = bound_trace_id() or new_trace_id()


@signals.task_prerun.connect
def _bind_trace_id(task=None, **_):
    """A message without a well-formed id (sent by another client, or forged) runs under a fresh one."""
    from controlplane.trace import bind_trace_id, is_well_formed, new_trace_id

    incoming = getattr(task.request, TRACE_HEADER, None) if task is not None else None
    bind_trace_id(incoming if is_well_formed(incoming) else new_trace_id())


@signals.task_postrun.connect
def _clear_trace_id(**_):
    from controlplane.trace import clear_trace_id

    clear_trace_id()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _check_database_connections(task=None, **_):
    """Between two tasks, what Django does between two requests (``close_old_connections``): a connection past
    ``DATABASE_CONN_MAX_AGE``, left in error or outside autocommit is closed, and the next one is health-checked
    before its first use. Celery's Django fixup closes every connection around every task instead, unless
    ``CELERY_DB_REUSE_MAX`` is set (settings): each task then opened a new Postgres connection (a backend forked,
    authentication) before its first statement, an OMS run before it could claim. Not for a task run eagerly, in
    its caller's transaction."""
    from django.db import close_old_connections

    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_rls_bypassing_role(**_):
    """SystemExit, not the ImproperlyConfigured itself: Celery's signal dispatch logs an Exception from a handler
    and starts the worker anyway, which let a worker run on a role that bypasses RLS."""
    from django.core.exceptions import ImproperlyConfigured

    from controlplane.dbroles import guard_runtime_role_at_start

    try:
        guard_runtime_role_at_start()
    except ImproperlyConfigured as exc:
        raise SystemExit(str(exc)) from exc


def _install_worker_heartbeat() -> None:
    from controlplane.heartbeats import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_install_worker_heartbeat()
