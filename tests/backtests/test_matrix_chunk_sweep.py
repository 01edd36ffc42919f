"""Matrix chunks that never run (issue 12, item 2): a chunk whose message the broker took and no worker began, or
whose worker died mid-run, is sent again up to JOB_MAX_ATTEMPTS and then fails its matrix; nothing stays RUNNING at
k of n chunks for ever.

The broker is a redis-server of the test's own (tests.processes.throwaway_redis) that nothing consumes: the messages
it holds are the lost ones."""

from datetime import timedelta

import pytest
import redis
from django.db import transaction
from django.utils import timezone

from backtests import matrices
from backtests import matrix_chunks
from backtests.models import BacktestMatrix, MatrixChunk
from controlplane import tenancy
from controlplane.models import AuditEvent, Membership
from tests.backtests.helpers import START, store_walk
from tests.factories import InstrumentFactory, TenantFactory, UserFactory
from tests.processes import queue_length, throwaway_redis  # noqa: F401  (throwaway_redis: a fixture)


@pytest.fixture
def matrix(django_db_setup, committed_db, throwaway_redis, settings):
    settings.BACKTEST_MATRIX_CHUNK_SIZE = 2
    tenant = TenantFactory(slug="chunks")
    user = UserFactory(username="chunks-operator")
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 300, timeframe="1h", base=30000.0, seed=4)
    with tenancy.tenant_context(tenant.id):
        with transaction.atomic():
            Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OPERATOR)
        created = matrices.matrix_create(
            actor=user,
            strategy="ma_crossover",
            mode="grid",
            space={"fast": [3, 5], "slow": [20, 30]},
            instruments=["BTC-USD"],
            timeframe="1h",
            start=START,
            end=START + timedelta(hours=300),
            split_at=START + timedelta(hours=200),
        )
    assert _queued(throwaway_redis) == 2  # the broker took both; no worker consumes them
    return tenant, created


def _queued(server) -> int:
    return queue_length(redis.Redis.from_url(server.url), "backtests")


def _chunks(tenant):
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        return list(MatrixChunk.objects.select_related("last_dispatch").order_by("first"))


def _matrix(tenant, matrix_id):
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        return BacktestMatrix.objects.get(pk=matrix_id)


def _sweep(tenant, *, after_seconds):
    return matrix_chunks.sweep_matrix_chunks_all_tenants(now=timezone.now() + timedelta(seconds=after_seconds))[
        tenant.id
    ]


def test_chunks_sent_but_never_started_are_sent_again_then_fail_their_matrix_audited(matrix, throwaway_redis, settings):
    tenant, created = matrix
    chunks = _chunks(tenant)
    assert [(c.first, c.stop, c.dispatches) for c in chunks] == [(0, 2, 1), (2, 4, 1)]
    assert all(c.last_dispatch.sent_at is not None and c.started_at is None for c in chunks)
    stale = settings.QUEUED_WORK_STALE_SECONDS
    assert _sweep(tenant, after_seconds=stale - 60) == {"redispatched": 0, "matrices_failed": 0}

    for dispatches in range(2, settings.JOB_MAX_ATTEMPTS + 1):
        assert _sweep(tenant, after_seconds=stale + 1) == {"redispatched": 2, "matrices_failed": 0}
        assert [c.dispatches for c in _chunks(tenant)] == [dispatches, dispatches]
        assert _queued(throwaway_redis) == 2 * dispatches
    assert _sweep(tenant, after_seconds=stale + 1)["matrices_failed"] == 1
    assert _sweep(tenant, after_seconds=stale + 1) == {"redispatched": 0, "matrices_failed": 0}  # FAILED: once

    failed = _matrix(tenant, created.id)
    assert (failed.status, failed.error_code) == ("FAILED", "JOB_NEVER_STARTED")
    assert "Sets 0-2 never started after 3 dispatch(es)" in failed.error_message
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        actions = list(
            AuditEvent.objects.filter(resource_type="backtest_matrix", resource_id=str(created.id))
            .order_by("id")
            .values_list("action", flat=True)
        )
    assert actions == (
        ["backtest_matrix.create"]
        + ["backtest_matrix.chunk_redispatched"] * 2 * (settings.JOB_MAX_ATTEMPTS - 1)
        + ["backtest_matrix.fail"]
    )


def test_a_chunk_whose_worker_died_mid_run_is_sent_again_and_the_matrix_then_finishes(matrix, settings):
    tenant, created = matrix
    first, second = _chunks(tenant)
    with tenancy.tenant_context(tenant.id):
        assert matrix_chunks.run_chunk(matrix_id=created.id, first=first.first, stop=first.stop) == 2
        # What a worker SIGKILLed mid-chunk leaves: begun, never finished.
        with transaction.atomic():
            MatrixChunk.objects.filter(pk=second.pk).update(started_at=timezone.now())
    within_lease = settings.JOB_LEASE_SECONDS - 60
    assert _sweep(tenant, after_seconds=within_lease) == {"redispatched": 0, "matrices_failed": 0}
    assert _sweep(tenant, after_seconds=settings.JOB_LEASE_SECONDS + 1) == {"redispatched": 1, "matrices_failed": 0}
    done, lost = _chunks(tenant)
    assert (done.dispatches, done.finished_at is not None) == (1, True)
    assert (lost.dispatches, lost.started_at, lost.finished_at) == (2, None, None)

    with tenancy.tenant_context(tenant.id):  # the new dispatch reaches a worker
        assert matrix_chunks.run_chunk(matrix_id=created.id, first=lost.first, stop=lost.stop) == 2
    finished = _matrix(tenant, created.id)
    assert (finished.status, finished.chunks_done, finished.sets_done) == ("FINISHED", 2, 4)
    assert all(c.finished_at is not None for c in _chunks(tenant))
    assert _sweep(tenant, after_seconds=settings.JOB_LEASE_SECONDS + 1) == {"redispatched": 0, "matrices_failed": 0}


def test_a_chunk_the_broker_never_took_is_left_to_the_outbox_however_long_it_waits(matrix, throwaway_redis, settings):
    tenant, created = matrix
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        # As the relay leaves a message while the broker is down: not sent yet.
        for chunk in MatrixChunk.objects.select_related("last_dispatch"):
            chunk.last_dispatch.sent_at = None
            chunk.last_dispatch.save(update_fields=["sent_at"])
    assert _sweep(tenant, after_seconds=settings.QUEUED_WORK_STALE_SECONDS * 10) == {
        "redispatched": 0,
        "matrices_failed": 0,
    }
    assert _matrix(tenant, created.id).status == "RUNNING"


def test_a_chunk_message_whose_sets_are_not_one_of_the_matrixs_chunks_runs_nothing(matrix):
    """A message left in the broker by other work (a matrix whose ids were reused, a chunk size since changed)
    must not run sets of this matrix under bounds it never had: counted as a chunk, it finished the matrix early,
    or left a real chunk finding its first set done and the matrix RUNNING at 1 of 2 for ever."""
    tenant, created = matrix
    with tenancy.tenant_context(tenant.id):
        assert matrix_chunks.run_chunk(matrix_id=created.id, first=0, stop=25) == 0
        first, second = _chunks(tenant)
        assert matrix_chunks.run_chunk(matrix_id=created.id, first=first.first, stop=first.stop) == 2
        assert matrix_chunks.run_chunk(matrix_id=created.id, first=second.first, stop=second.stop) == 2
    finished = _matrix(tenant, created.id)
    assert (finished.status, finished.chunks_done, finished.sets_done) == ("FINISHED", 2, 4)
