"""Trace ids and tenants reach tasks run by a real Celery worker; worker and beat write their heartbeats."""

import uuid

import pytest

from controlplane.models import ProcessHeartbeat
from controlplane.trace import bind_trace_id, clear_trace_id
from tests.controlplane import celery_probe
from tests.processes import BIN, env_for_test_database, start, stop, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(committed_db, tmp_path):
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--include",
            "tests.controlplane.celery_probe",
            "-n",
            f"{queue}@%h",
            "-l",
            "INFO",
        ],
        env_for_test_database(),
        tmp_path / "worker.log",
    )
    yield queue
    stop(process)
    print((tmp_path / "worker.log").read_text()[-3000:])


def test_a_task_enqueued_in_a_trace_runs_with_that_trace_id(worker):
    bind_trace_id("request-trace-123456")
    try:
        result = celery_probe.probe_trace.apply_async(queue=worker)
    finally:
        clear_trace_id()
    assert result.get(timeout=60) == "request-trace-123456"


def test_a_task_enqueued_by_a_task_keeps_the_trace_id(worker):
    bind_trace_id("chain-trace-abcdef")
    try:
        parent = celery_probe.probe_chain.apply_async(queue=worker).get(timeout=60)
    finally:
        clear_trace_id()
    assert parent["trace_id"] == "chain-trace-abcdef"
    from celery.result import AsyncResult

    assert AsyncResult(parent["child_id"]).get(timeout=60) == "chain-trace-abcdef"


def test_tasks_published_outside_any_trace_run_each_under_an_id_of_its_own(worker):
    from controlplane.trace import bound_trace_id, is_well_formed

    clear_trace_id()  # as beat publishes: nothing bound
    first = celery_probe.probe_trace.apply_async(queue=worker)
    second = celery_probe.probe_trace.apply_async(queue=worker)
    first_id, second_id = first.get(timeout=60), second.get(timeout=60)
    assert is_well_formed(first_id) and is_well_formed(second_id) and first_id != second_id
    assert bound_trace_id() is None


def test_a_tenant_task_runs_inside_its_tenant_in_the_database(worker):
    assert celery_probe.probe_tenant.apply_async(kwargs={"tenant_id": 77}, queue=worker).get(timeout=60) == 77


def test_the_worker_writes_a_heartbeat(worker):
    beat = wait_for(
        lambda: ProcessHeartbeat.objects.filter(kind="worker", hostname__startswith=worker).first(),
        timeout=60,
        what="worker heartbeat",
    )
    first_seen = beat.last_seen_at
    wait_for(
        lambda: ProcessHeartbeat.objects.get(pk=beat.pk).last_seen_at > first_seen,
        timeout=30,
        what="a second worker heartbeat",
    )
    assert worker in ProcessHeartbeat.objects.get(pk=beat.pk).queues


def test_beat_writes_a_heartbeat(committed_db, tmp_path):
    process = start(
        [str(BIN / "celery"), "-A", "controlplane", "beat", "-l", "INFO"],
        env_for_test_database(),
        tmp_path / "beat.log",
    )
    try:
        wait_for(lambda: ProcessHeartbeat.objects.filter(kind="beat").exists(), timeout=60, what="beat heartbeat")
    finally:
        stop(process)


def test_a_worker_keeps_its_database_connection_between_tasks_and_replaces_one_that_died(worker):
    """Celery's Django fixup closed every connection around every task: each task (an OMS run before its claim)
    opened a new Postgres connection. With CELERY_DB_REUSE_MAX the worker keeps it, checked between tasks as Django
    checks it between requests, so a connection that died is replaced, not reused (old code: three backends)."""
    pids = [celery_probe.probe_backend_pid.apply_async(queue=worker).get(timeout=60) for _ in range(3)]
    assert len(set(pids)) == 1, pids
    with pytest.raises(Exception):  # noqa: B017 (the server's error, whatever the driver calls it)
        celery_probe.probe_lose_connection.apply_async(queue=worker).get(timeout=60)
    after = celery_probe.probe_backend_pid.apply_async(queue=worker).get(timeout=60)
    assert isinstance(after, int) and after != pids[0]
