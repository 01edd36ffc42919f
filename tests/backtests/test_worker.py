"""A backtest and a matrix run on a real Celery worker consuming the backtests queue."""

from datetime import timedelta

import pytest
import redis
from django.db import transaction

from backtests.models import TERMINAL_RUN_STATUSES, BacktestMatrix, BacktestRun
from bots.models import Job
from controlplane import tenancy
from controlplane.models import Membership
from tests.backtests.helpers import START, store_walk
from tests.conftest import client_for
from tests.factories import InstrumentFactory, TenantFactory, UserFactory
from tests.processes import BIN, env_for_test_database, forget_queue, start, stop, wait_for


@pytest.mark.slow
def test_backtest_job_and_matrix_chunks_run_on_the_backtests_worker(django_db_setup, committed_db, tmp_path, settings):
    settings.BACKTEST_MATRIX_CHUNK_SIZE = 2
    # Messages earlier tests left on the shared broker's backtests queue name rows whose ids this test reuses.
    forget_queue(redis.Redis.from_url(settings.CELERY_BROKER_URL), "backtests")
    tenant = TenantFactory(slug="bt-worker")
    user = UserFactory(username="bt-operator")
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.OPERATOR)
    btc = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 400, timeframe="1h", base=30000.0, seed=4)
    api = client_for(user)
    window = {
        "instruments": ["BTC-USD"],
        "timeframe": "1h",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=400)).isoformat(),
    }
    # A volume cap keeps this run on the bar-by-bar reference path (progress reported from inside the engine).
    run = api.post(
        "/api/backtests",
        {"strategy": "zscore_mean_reversion", "fill_model": {"max_volume_share": 0.5}, **window},
        format="json",
    )
    assert run.status_code == 201, run.content
    matrix = api.post(
        "/api/backtests/matrix",
        {
            "strategy": "ma_crossover",
            "mode": "grid",
            "space": {"fast": [3, 5], "slow": [20, 30]},
            "split_at": (START + timedelta(hours=300)).isoformat(),
            **window,
        },
        format="json",
    )
    assert matrix.status_code == 201, matrix.content

    process = start(
        [
            str(BIN / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            "backtests",
            "--pool",
            "solo",
            "-n",
            "backtests@%h",
            "-l",
            "INFO",
        ],
        env_for_test_database(),
        tmp_path / "worker.log",
    )
    try:

        def finished():
            with tenancy.tenant_context(tenant.id), transaction.atomic():
                r = BacktestRun.objects.select_related("job").get(pk=run.json()["id"])
                m = BacktestMatrix.objects.get(pk=matrix.json()["id"])
            # The run finishes in one transaction and its job succeeds in the next: wait for both, and the matrix.
            done = (
                r.status in TERMINAL_RUN_STATUSES
                and r.job.status in Job.TERMINAL_STATUSES
                and m.status in TERMINAL_RUN_STATUSES
            )
            return (r, m) if done else None

        r, m = wait_for(finished, timeout=90, what="the backtest and the matrix to finish")
    finally:
        stop(process)
    assert (r.status, m.status) == ("FINISHED", "FINISHED")
    assert (r.bars_done, r.bars_total, r.engine_path, r.job.status) == (400, 400, "reference", "SUCCEEDED")
    assert (m.sets_done, m.chunks_done, m.chunks_total) == (4, 2, 2)
    assert len(api.get(f"/api/backtests/matrix/{m.id}").json()["results"]) == 4
