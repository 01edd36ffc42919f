"""The watchdog: stale runners restart up to a limit, then fail and demote a LIVE bot; expired job leases."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bots import services
from bots.models import Bot, Job, Runner, Stage
from controlplane import tenancy
from controlplane.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(make_bot, owner_a, tenant_a):
    bot = make_bot(stage=Stage.LIVE)
    with tenancy.tenant_context(tenant_a.id):
        runner = services.runner_start(bot_id=bot.id, actor=owner_a)
    return bot, runner


def age_heartbeat(tenant, runner, seconds):
    with tenancy.tenant_context(tenant.id):
        Runner.objects.filter(pk=runner.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_fresh_heartbeats_are_left_alone(running, tenant_a):
    bot, runner = running
    counts = services.watchdog_sweep()[tenant_a.id]
    assert counts["stale"] == 0
    with tenancy.tenant_context(tenant_a.id):
        assert Runner.objects.get(pk=runner.pk).status == Runner.Status.RUNNING


def test_stale_runner_is_restarted_then_failed_and_live_bot_demoted(running, tenant_a, settings):
    settings.RUNNER_HEARTBEAT_STALE_SECONDS = 60
    settings.RUNNER_MAX_RESTARTS = 2
    bot, runner = running
    for expected_restarts in (1, 2):
        age_heartbeat(tenant_a, runner, 61)
        counts = services.watchdog_sweep()[tenant_a.id]
        assert counts["stale"] == 1 and counts["restarted"] == 1
        with tenancy.tenant_context(tenant_a.id):
            runner.refresh_from_db()
        assert (runner.status, runner.restart_count) == (Runner.Status.RUNNING, expected_restarts)
    age_heartbeat(tenant_a, runner, 61)
    counts = services.watchdog_sweep()[tenant_a.id]
    assert counts["failed"] == 1
    with tenancy.tenant_context(tenant_a.id):
        runner.refresh_from_db()
        assert runner.status == Runner.Status.FAILED and "2 restarts" in runner.stop_reason
        assert Bot.objects.get(pk=bot.pk).stage == Stage.PAPER
        actions = list(AuditEvent.objects.filter(actor="watchdog").order_by("id").values_list("action", flat=True))
    assert actions == [
        "runner.stale",
        "runner.restart",
        "runner.stale",
        "runner.restart",
        "runner.stale",
        "runner.fail",
        "bot.leave_live",
        "bot.demote",
    ]


def test_a_stale_runner_of_a_killed_bot_is_failed_not_restarted(running, tenant_a, owner_a):
    bot, runner = running
    with tenancy.tenant_context(tenant_a.id):
        services.bot_kill(bot_id=bot.id, actor=owner_a, reason="drill")
    age_heartbeat(tenant_a, runner, 10_000)
    assert services.watchdog_sweep()[tenant_a.id]["failed"] == 1
    with tenancy.tenant_context(tenant_a.id):
        runner.refresh_from_db()
    assert runner.status == Runner.Status.FAILED and "BOT_KILLED" in runner.stop_reason


def claimed_job(bot, tenant, kind=Job.Kind.RECONCILE, attempts=1):
    with tenancy.tenant_context(tenant.id):
        return Job.objects.create(
            kind=kind,
            bot=bot,
            status=Job.Status.RUNNING,
            attempts=attempts,
            max_attempts=3,
            lease_expires_at=timezone.now() - timedelta(seconds=1),
            trace_id="t" * 16,
            created_by="test",
        )


def test_expired_lease_requeues_an_idempotent_job(running, tenant_a, django_capture_on_commit_callbacks):
    bot, _ = running
    job = claimed_job(bot, tenant_a)
    assert services.watchdog_sweep()[tenant_a.id]["jobs_requeued"] == 1
    with tenancy.tenant_context(tenant_a.id):
        job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.celery_task_id


def test_expired_lease_fails_a_job_out_of_attempts_or_not_idempotent(running, tenant_a):
    bot, _ = running
    exhausted = claimed_job(bot, tenant_a, attempts=3)
    unknown_kind = claimed_job(bot, tenant_a, kind=Job.Kind.BACKTEST)
    assert services.watchdog_sweep()[tenant_a.id]["jobs_failed"] == 2
    with tenancy.tenant_context(tenant_a.id):
        for job in (exhausted, unknown_kind):
            job.refresh_from_db()
            assert (job.status, job.error_code) == (Job.Status.FAILED, "JOB_LEASE_EXPIRED")


def test_watchdog_is_on_the_beat_schedule_with_expiry_under_its_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["bots-watchdog"]
    assert entry["task"] == "bots.watchdog"
    assert 0 < entry["options"]["expires"] < entry["schedule"]
