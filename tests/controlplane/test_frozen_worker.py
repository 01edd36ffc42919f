"""A frozen worker (SIGSTOP) reads as down within the stale bound, and as up again once it runs (issue 12, item 4).

The worker is started as ``make run`` starts it (prefork pool), on a throwaway queue of this test.
"""

import os
import signal
import time
import uuid

import pytest

from controlplane import tenancy
from controlplane.models import ProcessHeartbeat
from oversight.status import system_status
from tests.factories import TenantFactory
from tests.processes import BIN, env_for_test_database, start, stop, wait_for

pytestmark = pytest.mark.slow

BOUND = 30  # issue 12: a frozen worker reads as down within at most 30 s (HEARTBEAT_STALE_SECONDS's default)


def _worker_problem(tenant_id, hostname):
    """The ``celery.worker`` problems system status lists, and whether it counts this worker as alive."""
    with tenancy.tenant_context(tenant_id):
        body = system_status()
    alive = {w["hostname"] for w in body["scheduler"]["workers"]}
    problems = [b for b in body["blockers"] if b["component"] == "celery.worker"]
    return problems, hostname in alive


def test_a_frozen_worker_turns_status_degraded_within_the_stale_bound_and_ok_once_it_runs(
    django_db_setup, committed_db, tmp_path, settings
):
    bound = min(settings.HEARTBEAT_STALE_SECONDS, BOUND)
    tenant = TenantFactory(slug="frozen-worker")
    queue = f"frozen-{uuid.uuid4().hex[:8]}"
    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queue,
            "--concurrency",
            "1",
            "-n",
            f"{queue}@%h",
            "-l",
            "INFO",
        ],
        env_for_test_database(),
        tmp_path / "worker.log",
    )
    try:
        row = wait_for(
            lambda: ProcessHeartbeat.objects.filter(kind="worker", hostname__startswith=queue).first(),
            timeout=60,
            what="worker heartbeat",
        )
        wait_for(
            lambda: _worker_problem(tenant.id, row.hostname) == ([], True),
            timeout=30,
            what="status with the worker alive",
        )
        os.kill(process.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:

            def degraded():
                problems, alive = _worker_problem(tenant.id, row.hostname)
                return (problems, alive) if problems else None

            problems, alive = wait_for(degraded, timeout=bound + 3, interval=0.5, what="celery.worker degraded")
            assert not alive and time.monotonic() - frozen_at <= bound + 1
            assert problems[0]["severity"] == "degrading"
            with tenancy.tenant_context(tenant.id):
                assert system_status()["status"] != "OK"
        finally:
            os.kill(process.pid, signal.SIGCONT)
        wait_for(
            lambda: _worker_problem(tenant.id, row.hostname) == ([], True),
            timeout=30,
            what="status with the worker alive again",
        )
    finally:
        stop(process)
        print((tmp_path / "worker.log").read_text()[-3000:])
