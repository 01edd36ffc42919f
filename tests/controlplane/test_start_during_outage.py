"""A process that starts while the database is unreachable (issue 12, item 3): it starts and rides the outage out
instead of exiting on its start-up role check (which burned devstack's five restarts in about 30 s); the check
moves to the first connection that works, and a role that could bypass RLS is still refused there.

The unreachable database is real: a port nothing listens on (tests.processes.TcpGate, closed), which once opened
forwards to this run's Postgres."""

import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.signals import connection_created

from controlplane import dbroles
from controlplane.models import ProcessHeartbeat
from tests.processes import BASE_DIR, BIN, TcpGate, env_for_test_database, start, stop, wait_for


def _database_url_through(gate: TcpGate, alias: str = "default") -> str:
    s = connections[alias].settings_dict
    return f"postgres://{s['USER']}@127.0.0.1:{gate.port}/{s['NAME']}"


def _gate() -> TcpGate:
    s = connections["default"].settings_dict
    return TcpGate((s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)))


@pytest.mark.django_db
def test_the_web_app_loads_while_the_database_is_unreachable():
    gate = _gate()
    env = env_for_test_database() | {"DATABASE_URL": _database_url_through(gate), "DATABASE_CONNECT_TIMEOUT": "2"}
    loaded = subprocess.run(
        [str(BIN / "python"), "-c", "import controlplane.wsgi"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "the runtime role is checked on the first connection" in loaded.stdout + loaded.stderr


@pytest.mark.slow
def test_a_worker_started_during_the_outage_stays_up_and_works_once_the_database_is_back(
    django_db_setup, committed_db, tmp_path
):
    gate = _gate()
    queue = "start-during-outage"
    env = env_for_test_database() | {"DATABASE_URL": _database_url_through(gate), "DATABASE_CONNECT_TIMEOUT": "2"}
    log = tmp_path / "worker.log"
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
        env,
        log,
    )
    try:
        wait_for(
            lambda: " ready." in log.read_text() or process.poll() is not None,
            timeout=60,
            what="the worker to be ready (or to exit)",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        assert "the runtime role is checked on the first connection" in log.read_text()
        gate.open()
        wait_for(
            lambda: ProcessHeartbeat.objects.filter(kind="worker", hostname__startswith=queue).exists(),
            timeout=60,
            what="the worker's heartbeat once the database is reachable",
        )
        assert process.poll() is None
    finally:
        stop(process)
        gate.close()
        print(log.read_text()[-3000:])


@pytest.mark.slow
def test_a_worker_on_a_role_that_could_bypass_rls_does_not_start(django_db_setup, tmp_path):
    """Celery logs an exception raised by a worker_init handler and starts the worker anyway: the refusal must
    end the process."""
    s = connections["default"].settings_dict
    env = env_for_test_database() | {
        "DATABASE_URL": f"postgres://postgres@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    }
    log = tmp_path / "worker.log"
    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            "never-consumed",
            "--concurrency",
            "1",
            "-n",
            "superuser@%h",
            "-l",
            "INFO",
        ],
        env,
        log,
    )
    try:
        assert process.wait(timeout=60) != 0, log.read_text()[-3000:]
        assert "could bypass row-level security" in log.read_text()
        assert " ready." not in log.read_text()
    finally:
        stop(process)


@pytest.fixture
def unreachable_then_as(django_db_blocker):
    """The default connection pointed at a closed port, then (``reach(user)``) at this run's server as ``user``."""
    default = connections["default"]
    saved = dict(default.settings_dict)
    gate = _gate()

    def reach(user: str) -> None:
        default.close()
        default.settings_dict.update(HOST="127.0.0.1", PORT=str(saved["PORT"] or 5432), USER=user)

    reach.runtime_user = saved["USER"]
    with django_db_blocker.unblock():
        default.close()
        default.settings_dict.update(HOST="127.0.0.1", PORT=str(gate.port))
        yield reach
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)
        connection_created.disconnect(dispatch_uid=dbroles.__name__)


def test_a_role_that_could_bypass_rls_is_refused_on_the_first_connection_after_the_outage(unreachable_then_as):
    dbroles.guard_runtime_role_at_start()  # unreachable: the start goes on
    unreachable_then_as("postgres")  # back, but as a superuser: no query may run on it
    for _ in range(2):  # refused on every connection, not only the first
        with pytest.raises(ImproperlyConfigured, match="superuser"):
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
        assert connections["default"].connection is None
    unreachable_then_as(unreachable_then_as.runtime_user)  # back as the runtime role: checked once, then served
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (unreachable_then_as.runtime_user,)
    assert connection_created.disconnect(dispatch_uid=dbroles.__name__) is False  # the check ran and is gone
