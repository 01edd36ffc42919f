"""Two simultaneous promotes or starts of one bot, on the real Postgres in separate threads: one wins."""

import threading

import pytest
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from bots import services
from oversight.promotion import bot_promote
from bots.models import Bot, Runner, Stage
from controlplane import tenancy
from controlplane.errors import ControlPlaneError
from controlplane.models import AuditEvent, Membership
from tests.factories import TenantFactory, UserFactory


@pytest.fixture
def committed_bot(django_db_setup, committed_db):
    tenant = TenantFactory(slug="race")
    user = UserFactory(username="racer")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OWNER)
        bot = services.bot_create(actor=user, name="racer", strategy="ma_crossover", parameters={}, instruments=["ES"])
    return tenant, user, bot


def run_twice_at_once(tenant_id, action):
    barrier = threading.Barrier(2)
    outcomes = []

    def worker():
        try:
            with tenancy.tenant_context(tenant_id):
                barrier.wait(timeout=10)
                action()
            outcomes.append("ok")
        except ControlPlaneError as exc:
            outcomes.append(str(exc.code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # A thread still running would leave its outcome out: read them only once both have finished.
    assert not any(thread.is_alive() for thread in threads), "a worker thread did not finish within 60 s"
    return sorted(outcomes)


def test_two_simultaneous_promotes_one_wins(committed_bot):
    tenant, user, bot = committed_bot
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.BACKTESTED)
    outcomes = run_twice_at_once(tenant.id, lambda: bot_promote(bot_id=bot.id, actor=user, to_stage=Stage.PAPER))
    assert outcomes == ["ILLEGAL_TRANSITION", "ok"]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        assert Bot.objects.get(pk=bot.pk).stage == Stage.PAPER
        assert AuditEvent.objects.filter(action="bot.promote").count() == 1


def test_two_simultaneous_starts_one_wins(committed_bot):
    tenant, user, bot = committed_bot
    outcomes = run_twice_at_once(tenant.id, lambda: services.runner_start(bot_id=bot.id, actor=user))
    assert outcomes == ["RUNNER_ALREADY_ACTIVE", "ok"]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        assert Runner.objects.filter(bot=bot).count() == 1
        assert AuditEvent.objects.filter(action="runner.start").count() == 1


def test_the_database_refuses_a_second_active_runner(committed_bot):
    tenant, user, bot = committed_bot
    with tenancy.tenant_context(tenant.id):
        services.runner_start(bot_id=bot.id, actor=user)
        with pytest.raises(IntegrityError), transaction.atomic():
            Runner.objects.create(
                bot=bot, status=Runner.Status.STALE, started_by="x", started_at=timezone.now(), trace_id="t" * 16
            )
