"""One loop, one instance: the advisory lock, two supervisors racing, the heartbeat in system status, and real beat
dispatching the sweep to a real worker."""

import logging
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from bots import services as bot_services
from bots.models import Bot, Runner
from controlplane import tenancy
from controlplane.models import Membership
from execution.models import RiskIncident
from oversight.models import SupervisorRun
from oversight.status import system_status
from oversight.supervisor.heartbeat import LOCK_KEY
from oversight.supervisor.sweep import supervisor_sweep
from tests.factories import TenantFactory, UserFactory
from tests.processes import BIN, env_for_test_database, start, stop, throwaway_redis, wait_for  # noqa: F401
from tests.status_fixtures import record_supervisor_run


def test_a_sweep_returns_at_once_while_another_supervisor_holds_the_lock(db, caplog):
    import psycopg

    s = connections["default"].settings_dict
    holder = psycopg.connect(  # a second session: another supervisor
        dbname=s["NAME"], user=s["USER"], host=s["HOST"] or None, port=s["PORT"] or None, autocommit=True
    )
    holder_pid = holder.info.backend_pid
    try:
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0] is True
        with caplog.at_level(logging.INFO, logger="oversight.supervisor.sweep"):
            assert supervisor_sweep() is None
        assert "another supervisor holds the lock" in caplog.text
        assert not SupervisorRun.objects.exists()
    finally:
        holder.close()

    def holder_gone():
        # The server ends the holder's backend, and so releases its locks, a moment after the client closes.
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s)", [holder_pid])
            return cursor.fetchone()[0]

    wait_for(holder_gone, timeout=10, interval=0.05, what="the holder's session to end")
    assert supervisor_sweep() is not None  # the lock went with the holder's session
    assert SupervisorRun.objects.get().finished_at is not None


def _erring_bot() -> Bot:
    tenant, owner = TenantFactory(slug="race"), UserFactory(username="race-owner")
    with tenancy.tenant_context(tenant.id):
        Membership.objects.create(tenant=tenant, user=owner, role=Membership.Role.OWNER)
        bot = bot_services.bot_create(
            actor=owner,
            name="racing",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage="PAPER")
        now = timezone.now()
        Runner.objects.create(
            bot=bot,
            status="RUNNING",
            started_by="t",
            started_at=now,
            last_heartbeat_at=now,
            consecutive_errors=3,
            trace_id="t",
        )
    return bot


def test_two_supervisors_racing_act_exactly_once(committed_db):
    bot = _erring_bot()
    barrier = threading.Barrier(2)
    results, failures = [], []

    def supervise():
        try:
            barrier.wait(timeout=10)
            results.append(supervisor_sweep())
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=supervise) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    ran = [r for r in results if r is not None]
    # Either the loser found the lock taken, or it ran after the winner and found the episode already open.
    assert sum(r.get("acted", 0) for r in ran) >= 1
    with tenancy.tenant_context(bot.tenant_id):
        acted = list(RiskIncident.objects.filter(bot=bot, kind="supervisor", details__trigger="tick_errors"))
    assert len(acted) == 1
    fences = sorted(SupervisorRun.objects.values_list("fence", flat=True))
    assert fences == list(range(1, len(ran) + 1))  # one fence per run that held the lock, none shared


def test_a_stale_supervisor_degrades_system_status_with_its_fix(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        body = system_status()
    issue = next(b for b in body["blockers"] if b["component"] == "supervisor")
    assert issue["severity"] == "degrading" and "start beat and a worker" in issue["suggested_fix"].lower()
    assert body["supervisor"]["stale"] is True and body["supervisor"]["last_run_at"] is None

    record_supervisor_run(timezone.now() - timedelta(seconds=4 * settings.SUPERVISOR_INTERVAL_SECONDS + 5))
    with tenancy.tenant_context(tenant_a.id):
        body = system_status()
    assert "supervisor" in {b["component"] for b in body["blockers"]}

    record_supervisor_run()
    with tenancy.tenant_context(tenant_a.id):
        body = system_status()
    assert "supervisor" not in {b["component"] for b in body["blockers"]}
    assert body["supervisor"]["stale"] is False and body["supervisor"]["age_seconds"] < 5


def test_the_beat_schedule_runs_the_supervisor_every_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["oversight-supervisor"]
    assert entry["task"] == "oversight.supervisor_sweep"
    assert entry["schedule"] == settings.SUPERVISOR_INTERVAL_SECONDS == 15
    assert entry["options"]["expires"] < entry["schedule"]


@pytest.mark.slow
def test_a_real_beat_dispatches_the_sweep_to_a_real_worker(django_db_setup, committed_db, throwaway_redis, tmp_path):
    env = {**env_for_test_database(), "CELERY_BROKER_URL": throwaway_redis.url, "SUPERVISOR_INTERVAL_SECONDS": "1"}
    beat = start(
        [str(BIN / "celery"), "-A", "controlplane", "beat", "-l", "INFO", "--pidfile", str(tmp_path / "beat.pid")],
        env,
        tmp_path / "beat.log",
    )
    worker = start(
        [str(BIN / "celery"), "-A", "controlplane", "worker", "-Q", "default", "--pool", "solo", "-l", "INFO"],
        env,
        tmp_path / "worker.log",
    )
    try:
        wait_for(
            lambda: SupervisorRun.objects.filter(finished_at__isnull=False).count() >= 2,
            timeout=30,
            what="two supervisor runs dispatched by beat",
        )
        runs = list(SupervisorRun.objects.order_by("fence"))
        assert [r.fence for r in runs[:2]] == [1, 2] and runs[0].errors == []
    finally:
        stop(beat)
        stop(worker)
        for log in ("beat.log", "worker.log"):
            print(log, (tmp_path / log).read_text()[-2000:] if (tmp_path / log).exists() else "")
