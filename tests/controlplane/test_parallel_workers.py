"""`make test` runs in several pytest-xdist processes: each must keep to a Redis database of its own, and so must
every process its tests start (a Celery worker, ``make run``), or workers would take each other's queued tasks."""

import json
import os
import subprocess
import sys

from django.db import connections

from tests.processes import BASE_DIR

SHOW = (
    "import json, os, subprocess, sys; from controlplane import settings as s; "
    "print(json.dumps([s.REDIS_URL, s.CELERY_BROKER_URL, s.CACHES['default']['LOCATION'], os.environ['REDIS_URL']]))"
)
# The same, then once more from a process it starts with its own environment (as a test starts a Celery worker).
SHOW_AND_START = SHOW + "; sys.stdout.flush(); subprocess.run([sys.executable, '-c', sys.argv[1]], check=True)"


def _settings_in_a_process(**env):
    base = {k: v for k, v in os.environ.items() if k not in {"CONTROLPLANE_REDIS_WORKER", "CELERY_BROKER_URL"}}
    base.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-c", SHOW_AND_START, SHOW],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]


def test_an_xdist_worker_and_the_processes_it_starts_use_redis_url_s_database_plus_the_worker_index():
    worker, child = _settings_in_a_process(REDIS_URL="redis://127.0.0.1:6379/5", PYTEST_XDIST_WORKER="gw1")
    assert worker == ["redis://127.0.0.1:6379/6"] * 4
    assert child == worker  # inherited, not moved on a second time


def test_outside_xdist_redis_url_is_taken_as_it_is():
    assert _settings_in_a_process(REDIS_URL="redis://127.0.0.1:6379/5") == [["redis://127.0.0.1:6379/5"] * 4] * 2


def test_a_url_without_a_database_is_database_zero_plus_the_worker_index():
    [worker, _] = _settings_in_a_process(REDIS_URL="redis://127.0.0.1:6379", PYTEST_XDIST_WORKER="gw2")
    assert worker[0] == "redis://127.0.0.1:6379/2"


def test_each_xdist_worker_has_a_test_database_of_its_own(request, django_db_setup):
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    [name] = {connections[alias].settings_dict["NAME"] for alias in ("default", "owner")}
    assert name.startswith("test_")
    if worker:
        assert name.endswith(f"_{worker}")
    else:
        assert "_gw" not in name
