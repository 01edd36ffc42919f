"""Saved work that never runs (issue 12, item 2): the transactional outbox and its relay.

Each test has a redis-server of its own as the broker (tests.processes.throwaway_redis); the outbox sends through
``settings.CELERY_BROKER_URL``, so stopping or freezing that server is a real broker outage for what is under test.
"""

import json
import threading
from datetime import timedelta

import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone

from bots import services
from bots.models import Job
from controlplane import outbox, redis_clients, tenancy
from controlplane.models import AuditEvent, Membership, OutboxMessage
from tests.conftest import client_for
from tests.factories import TenantFactory, UserFactory
from tests.processes import (  # noqa: F401  (throwaway_redis: a fixture)
    BIN,
    env_for_test_database,
    queue_length,
    start,
    stop,
    throwaway_redis,
    wait_for,
)

LATER = timedelta(hours=1)  # a relay run this far ahead finds every backed-off message due


def _operator_and_bot(slug="outbox"):
    tenant = TenantFactory(slug=slug)
    user = UserFactory(username=f"{slug}-operator")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OPERATOR)
        bot = services.bot_create(
            actor=user,
            name="bot-1",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )
    return tenant, user, bot


def _messages(tenant):
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        return list(OutboxMessage.objects.order_by("id"))


def _broker(server):
    return redis.Redis.from_url(server.url)


def _queued_task_ids(server, queue="default"):
    return [json.loads(raw)["headers"]["id"] for raw in _broker(server).lrange(queue, 0, -1)]


@pytest.mark.slow
def test_a_job_created_while_the_broker_is_down_is_saved_and_runs_on_a_worker_once_the_relay_sends_it(
    django_db_setup, committed_db, throwaway_redis, tmp_path
):
    tenant, user, bot = _operator_and_bot()
    throwaway_redis.stop()
    answer = client_for(user).post("/api/jobs", {"kind": "RECONCILE", "bot_id": bot.id}, format="json")

    assert answer.status_code == 201, answer.content  # accepted and queued, not refused
    job_id = answer.json()["id"]
    [message] = _messages(tenant)
    assert (message.task, message.kwargs, message.queue) == (
        "bots.run_job",
        {"job_id": job_id, "tenant_id": tenant.id},
        "default",
    )
    assert message.sent_at is None and message.trace_id == answer["X-Trace-Id"]
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        assert Job.objects.get(pk=job_id).status == Job.Status.QUEUED
        assert AuditEvent.objects.filter(action="job.create", resource_id=str(job_id)).exists()

    assert outbox.relay_outbox(now=timezone.now() + LATER) == {tenant.id: {"sent": 0, "failed": 1}}
    throwaway_redis.restart()
    assert queue_length(_broker(throwaway_redis), "default") == 0  # nothing was sent while it was down
    assert outbox.relay_outbox(now=timezone.now() + LATER) == {tenant.id: {"sent": 1, "failed": 0}}
    assert outbox.relay_outbox(now=timezone.now() + LATER) == {}  # sent once, never again
    [message] = _messages(tenant)
    assert message.sent_at is not None and message.attempts >= 2 and "Error" in message.last_error
    assert _queued_task_ids(throwaway_redis) == [message.options["task_id"]]

    env = {**env_for_test_database(), "CELERY_BROKER_URL": throwaway_redis.url}
    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "-n",
            "outbox@%h",
            "-l",
            "INFO",
        ],
        env,
        tmp_path / "worker.log",
    )
    try:

        def finished():
            with tenancy.tenant_context(tenant.id), transaction.atomic():
                job = Job.objects.get(pk=job_id)
            return job if job.status in Job.TERMINAL_STATUSES else None

        job = wait_for(finished, timeout=60, what="the job to finish")
    finally:
        stop(process)
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 1), job.error_message


def test_a_send_that_raised_after_the_commit_is_sent_again_by_the_relay(django_db_setup, committed_db, throwaway_redis):
    tenant, user, bot = _operator_and_bot()
    with tenancy.tenant_context(tenant.id):
        with transaction.atomic():
            job = services.job_create(kind=Job.Kind.RECONCILE, actor=user, bot_id=bot.id)
            throwaway_redis.freeze()  # the broker answered until now; the send after the commit times out
        [message] = _messages(tenant)
        assert message.sent_at is None and message.attempts == 1 and "imeout" in message.last_error
        assert message.next_attempt_at > timezone.now()
        throwaway_redis.thaw()
        redis_clients.forget_failures()
        assert outbox.relay_outbox() == {}  # backing off: not due yet
        assert outbox.relay_outbox(now=timezone.now() + LATER) == {tenant.id: {"sent": 1, "failed": 0}}
    assert _queued_task_ids(throwaway_redis) == [job.celery_task_id]


def test_a_message_another_sender_holds_is_skipped_not_sent_twice(django_db_setup, committed_db, throwaway_redis):
    tenant, user, bot = _operator_and_bot()
    throwaway_redis.stop()
    with tenancy.tenant_context(tenant.id):
        jobs = [services.job_create(kind=Job.Kind.RECONCILE, actor=user, bot_id=bot.id) for _ in range(2)]
    throwaway_redis.restart()
    held, free = [m.id for m in _messages(tenant)]
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with tenancy.tenant_context(tenant.id), transaction.atomic():
                OutboxMessage.objects.select_for_update().get(pk=held)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    try:
        assert outbox.relay_outbox(now=timezone.now() + LATER) == {tenant.id: {"sent": 1, "failed": 0}}
    finally:
        release.set()
        holder.join(30)
    assert _queued_task_ids(throwaway_redis) == [jobs[1].celery_task_id]
    assert [m.id for m in _messages(tenant) if m.sent_at is None] == [held]
    assert free != held


def test_two_relays_at_once_send_each_message_exactly_once(django_db_setup, committed_db, throwaway_redis):
    tenants = [_operator_and_bot(slug)[::2] for slug in ("two-a", "two-b")]
    throwaway_redis.stop()
    for tenant, bot in tenants:
        with tenancy.tenant_context(tenant.id):
            for _ in range(15):
                services.job_create(kind=Job.Kind.RECONCILE, actor_name="test", bot_id=bot.id)
    # While the broker is down a relay run stops at its first failure: the second tenant is not even tried.
    assert outbox.relay_outbox(now=timezone.now() + LATER) == {tenants[0][0].id: {"sent": 0, "failed": 1}}
    throwaway_redis.restart()
    start_together, results, errors = threading.Barrier(2), [], []

    def relay():
        try:
            start_together.wait(30)
            results.append(outbox.relay_outbox(now=timezone.now() + LATER))
        except Exception as exc:  # reported below: an exception in a thread would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    relays = [threading.Thread(target=relay) for _ in range(2)]
    for thread in relays:
        thread.start()
    for thread in relays:
        thread.join(60)
    assert errors == []
    sent = sum(counts["sent"] for result in results for counts in result.values())
    assert sent == 30
    task_ids = _queued_task_ids(throwaway_redis)
    assert len(task_ids) == 30 and len(set(task_ids)) == 30
    for tenant, _ in tenants:
        assert all(m.sent_at is not None for m in _messages(tenant))


def test_a_job_sent_but_never_started_past_the_bound_is_sent_again_then_failed_and_audited(
    django_db_setup, committed_db, throwaway_redis, settings
):
    from bots.services import watchdog_sweep

    tenant, user, bot = _operator_and_bot()
    with tenancy.tenant_context(tenant.id):
        job = services.job_create(kind=Job.Kind.RECONCILE, actor=user, bot_id=bot.id)
    [message] = _messages(tenant)
    assert message.sent_at is not None  # the broker took it; no worker consumes the queue
    within = message.sent_at + timedelta(seconds=settings.QUEUED_WORK_STALE_SECONDS - 1)
    assert watchdog_sweep(now=within)[tenant.id]["jobs_redispatched"] == 0

    def sweep():
        later = timezone.now() + timedelta(seconds=settings.QUEUED_WORK_STALE_SECONDS + 1)
        return watchdog_sweep(now=later)[tenant.id]

    for dispatches in range(2, job.max_attempts + 1):
        assert (sweep()["jobs_redispatched"], len(_messages(tenant))) == (1, dispatches)
        assert all(m.sent_at is not None for m in _messages(tenant))
    assert sweep()["jobs_never_started"] == 1
    assert sweep()["jobs_never_started"] == 0  # FAILED is terminal: swept once
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        job.refresh_from_db()
        actions = list(
            AuditEvent.objects.filter(resource_type="job", resource_id=str(job.id))
            .order_by("id")
            .values_list("action", flat=True)
        )
    assert (job.status, job.error_code) == (Job.Status.FAILED, "JOB_NEVER_STARTED"), job.error_message
    assert actions == ["job.create"] + ["job.never_started.redispatched"] * (job.max_attempts - 1) + [
        "job.never_started.failed"
    ]
    task_ids = _queued_task_ids(throwaway_redis)
    assert len(task_ids) == job.max_attempts == len(set(task_ids))


@pytest.mark.django_db
def test_the_admin_lists_unsent_messages_of_the_tenant(client, tenant_a, owner_a, plain_static_storage):
    with tenancy.tenant_context(tenant_a.id):
        bot = services.bot_create(
            actor=owner_a,
            name="bot-1",
            strategy="ma_crossover",
            instruments=["ES"],
            parameters={"fast": 5, "slow": 20},
            venue="sim",
            data_source="imported",
        )
        job = services.job_create(kind=Job.Kind.RECONCILE, actor=owner_a, bot_id=bot.id)  # not committed: unsent
    owner_a.is_staff = True
    owner_a.save(update_fields=["is_staff"])
    client.force_login(owner_a)
    unsent = client.get("/admin/controlplane/outboxmessage/?sent=no")
    assert unsent.status_code == 200 and f"job {job.id}".encode() in unsent.content
    sent = client.get("/admin/controlplane/outboxmessage/?sent=yes")
    assert sent.status_code == 200 and f"job {job.id}".encode() not in sent.content
