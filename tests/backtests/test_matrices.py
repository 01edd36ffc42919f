"""Matrices: expansion, fan-out in chunks, progress, idempotent chunks, ranking by out-of-sample, cancel."""

from datetime import timedelta

import pytest
from django.db import transaction

from backtests import matrices
from backtests import matrix_chunks
from backtests.models import BacktestMatrix, BacktestRun, MatrixResult
from bots import services as bot_services
from controlplane import tenancy
from tests.backtests.helpers import START, store_walk
from tests.factories import InstrumentFactory


@pytest.fixture
def btc(db):
    return InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )


def _body(**overrides):
    body = {
        "strategy": "ma_crossover",
        "mode": "grid",
        "space": {"fast": [3, 5, 40], "slow": [20, 30]},
        "instruments": ["BTC-USD"],
        "timeframe": "1h",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=1200)).isoformat(),
        "split_at": (START + timedelta(hours=800)).isoformat(),
    }
    body.update(overrides)
    return body


def _chunks(matrix):
    size = matrices.settings.BACKTEST_MATRIX_CHUNK_SIZE
    return [(lo, min(lo + size, matrix.sets_total)) for lo in range(0, matrix.sets_total, size)]


def test_grid_fans_out_in_chunks_and_ranks_by_out_of_sample(api_operator_a, tenant_a, btc, settings):
    settings.BACKTEST_MATRIX_CHUNK_SIZE = 2
    settings.METRICS_MIN_DAYS_FOR_ANNUALIZED = 1  # the 400 h out-of-sample part has a Sharpe to rank by
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    response = api_operator_a.post("/api/backtests/matrix", _body(), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    # fast 40 >= slow: those two sets are invalid and left out.
    assert (created["sets_total"], created["chunks_total"], created["status"]) == (4, 2, "RUNNING")
    with tenancy.tenant_context(tenant_a.id):
        with transaction.atomic():
            matrix = BacktestMatrix.objects.get(pk=created["id"])
        first, second = _chunks(matrix)
        assert matrix_chunks.run_chunk(matrix_id=matrix.id, first=first[0], stop=first[1]) == 2
        assert matrix_chunks.run_chunk(matrix_id=matrix.id, first=first[0], stop=first[1]) == 0  # a retry: nothing new
    half = api_operator_a.get(f"/api/backtests/matrix/{matrix.id}").json()
    assert (half["sets_done"], half["progress"], half["status"]) == (2, 0.5, "RUNNING")
    with tenancy.tenant_context(tenant_a.id):
        assert matrix_chunks.run_chunk(matrix_id=matrix.id, first=second[0], stop=second[1]) == 2
    done = api_operator_a.get(f"/api/backtests/matrix/{matrix.id}").json()
    assert (done["status"], done["sets_done"], len(done["results"])) == ("FINISHED", 4, 4)
    scores = [r["score"] for r in done["results"] if r["enough_trades"] and r["score"] is not None]
    assert scores == sorted(scores, reverse=True)
    best = done["results"][0]
    assert best["rank"] == 1 and best["in_sample"]["number_of_trades"] > 0
    assert best["out_of_sample"]["end_equity"] is not None
    assert any(r["check"] == "oos_is_sharpe_ratio" for r in best["classification_reasons"])


def test_random_sample_is_seeded_and_validated():
    space = {"fast": {"min": 2, "max": 10}, "slow": {"min": 15, "max": 60}}
    one = matrices.expand_sets(strategy="ma_crossover", base={}, space=space, mode="random", samples=20, seed=3)
    two = matrices.expand_sets(strategy="ma_crossover", base={}, space=space, mode="random", samples=20, seed=3)
    other = matrices.expand_sets(strategy="ma_crossover", base={}, space=space, mode="random", samples=20, seed=4)
    assert one == two != other
    assert all(2 <= s["fast"] <= 10 and 15 <= s["slow"] <= 60 for s in one)


def test_matrix_validation_names_the_field(api_operator_a, btc):
    cases = [
        (_body(space={"nope": [1]}), "space"),
        (_body(mode="random"), "samples"),
        (_body(split_at=START.isoformat()), "split_at"),
        (_body(instruments=["NOPE"]), "instruments"),
        (_body(walk_forward_folds=3), "walk_forward_folds"),
    ]
    for body, field in cases:
        response = api_operator_a.post("/api/backtests/matrix", body, format="json")
        assert response.status_code == 400 and field in response.json()["details"], (field, response.content)


def test_cancel_stops_remaining_chunks_and_isolation(api_operator_a, api_viewer_a, api_owner_b, tenant_a, btc):
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    matrix_id = api_operator_a.post("/api/backtests/matrix", _body(), format="json").json()["id"]
    assert api_viewer_a.post(f"/api/backtests/matrix/{matrix_id}/cancel").status_code == 403
    assert api_owner_b.get(f"/api/backtests/matrix/{matrix_id}").status_code == 404
    assert api_owner_b.get("/api/backtests/matrix").json()["results"] == []
    assert api_operator_a.post(f"/api/backtests/matrix/{matrix_id}/cancel").json()["status"] == "CANCELLED"
    with tenancy.tenant_context(tenant_a.id):
        assert matrix_chunks.run_chunk(matrix_id=matrix_id, first=0, stop=4) == 0
        with transaction.atomic():
            assert not MatrixResult.objects.filter(matrix_id=matrix_id).exists()
    assert api_viewer_a.get(f"/api/backtests/matrix/{matrix_id}").json()["status"] == "CANCELLED"


def _run_all_chunks(tenant, matrix_id):
    with tenancy.tenant_context(tenant.id):
        with transaction.atomic():
            matrix = BacktestMatrix.objects.get(pk=matrix_id)
        for lo, hi in _chunks(matrix):
            matrix_chunks.run_chunk(matrix_id=matrix_id, first=lo, stop=hi)


def _backtest_metrics(api, tenant, body):
    """The same set through POST /api/backtests, run as the worker runs it."""
    run_id = api.post("/api/backtests", body, format="json").json()["id"]
    with tenancy.tenant_context(tenant.id):
        bot_services.job_execute(job_id=BacktestRun.objects.get(pk=run_id).job_id)
        run = BacktestRun.objects.get(pk=run_id)
    assert run.status == "FINISHED", run.error_message
    return run.metrics


def test_fold_windows_are_consecutive_equal_and_roll_forward():
    windows = matrices.fold_windows(start=START, end=START + timedelta(hours=30), folds=2)
    hours = [
        tuple(
            (w[k] - START) / timedelta(hours=1)
            for k in ("in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end")
        )
        for w in windows
    ]
    assert hours == [(0, 10, 10, 20), (10, 20, 20, 30)]
    assert [w["fold"] for w in windows] == [1, 2]
    uneven = matrices.fold_windows(start=START, end=START + timedelta(minutes=10), folds=2)
    assert uneven[-1]["out_of_sample_end"] == START + timedelta(minutes=10)
    assert uneven[0]["in_sample_end"] == START + timedelta(seconds=200)


def test_walk_forward_stores_every_fold_and_ranks_by_the_folds_mean(api_operator_a, tenant_a, btc, settings):
    settings.BACKTEST_MATRIX_CHUNK_SIZE = 3
    settings.METRICS_MIN_DAYS_FOR_ANNUALIZED = 1  # each 300 h window has a Sharpe
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    fill_model = {"slippage_bps": 1, "fee_bps": 2}
    created = api_operator_a.post(
        "/api/backtests/matrix", _body(walk_forward_folds=3, fill_model=fill_model), format="json"
    ).json()
    assert (created["sets_total"], created["folds_total"], created["progress"]) == (4, 12, 0.0)
    _run_all_chunks(tenant_a, created["id"])
    done = api_operator_a.get(f"/api/backtests/matrix/{created['id']}").json()
    assert (done["status"], done["folds_done"], done["progress"]) == ("FINISHED", 12, 1.0)
    for result in done["results"]:
        folds = result["folds"]
        assert [f["fold"] for f in folds] == [1, 2, 3]
        assert [f["out_of_sample_start"] for f in folds] == [
            (START + timedelta(hours=h)).isoformat() for h in (300, 600, 900)
        ]
        summary = result["walk_forward"]
        oos = [f["out_of_sample"]["sharpe"] for f in folds]
        if None in oos:
            assert summary["mean_out_of_sample_sharpe"] is None and result["score"] is None
        else:
            assert summary["mean_out_of_sample_sharpe"] == pytest.approx(sum(oos) / 3)
            assert result["score"] == summary["mean_out_of_sample_sharpe"]
        check = next(r for r in result["classification_reasons"] if r["check"] == "walk_forward_oos_is_sharpe_ratio")
        assert check["value"] == summary["oos_is_sharpe_ratio"]
    for enough in (True, False):  # results with enough trades first, each group by score, None last
        group = [r for r in done["results"] if r["enough_trades"] is enough]
        assert all(r["scored_trades"] == r["walk_forward"]["out_of_sample_trades"] for r in group)
        scores = [r["score"] for r in group]
        ranked = [s for s in scores if s is not None]
        assert ranked == sorted(ranked, reverse=True) and scores[: len(ranked)] == ranked
    assert [r["enough_trades"] for r in done["results"]] == sorted(
        [r["enough_trades"] for r in done["results"]], reverse=True
    )
    # A fold's out-of-sample numbers are those of a backtest of the same set over that fold's window.
    best = done["results"][0]
    fold = best["folds"][1]
    expected = _backtest_metrics(
        api_operator_a,
        tenant_a,
        {
            "strategy": "ma_crossover",
            "parameters": best["parameters"],
            "instruments": ["BTC-USD"],
            "timeframe": "1h",
            "start": fold["out_of_sample_start"],
            "end": fold["out_of_sample_end"],
            "fill_model": fill_model,
        },
    )
    assert fold["out_of_sample"]["number_of_trades"] == expected["number_of_trades"] > 0
    assert fold["out_of_sample"]["end_equity"] == pytest.approx(expected["end_equity"])
    assert fold["out_of_sample"]["sharpe"] == pytest.approx(expected["sharpe"])


def test_a_fold_count_leaving_a_window_without_bars_is_refused(api_operator_a, tenant_a, btc):
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    # Bars cover the first 1200 of 1600 hours: with 3 folds (4 windows of 400 h) the last window is empty.
    body = _body(end=(START + timedelta(hours=1600)).isoformat(), walk_forward_folds=3)
    response = api_operator_a.post("/api/backtests/matrix", body, format="json")
    assert (response.status_code, response.json()["error_code"]) == (400, "VALIDATION_ERROR")
    message = response.json()["details"]["walk_forward_folds"][0]
    assert "has 0 stored 1h bars of BTC-USD" in message and (START + timedelta(hours=1200)).isoformat() in message
    two_folds = api_operator_a.post(
        "/api/backtests/matrix", _body(end=body["end"], walk_forward_folds=2), format="json"
    )
    assert two_folds.status_code == 201, two_folds.content
    too_many = api_operator_a.post("/api/backtests/matrix", _body(walk_forward_folds=21), format="json")
    assert "walk_forward_folds" in too_many.json()["details"]
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        assert BacktestMatrix.objects.count() == 1


def test_matrix_over_two_instruments_reports_the_combined_account(api_operator_a, tenant_a, btc):
    eth = InstrumentFactory(
        symbol="ETH-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    store_walk(btc, 1200, timeframe="1h", base=30000.0, seed=4)
    store_walk(eth, 1200, timeframe="1h", base=2000.0, seed=11)
    body = _body(instruments=["BTC-USD", "ETH-USD"], space={"fast": [5], "slow": [20, 30]})
    created = api_operator_a.post("/api/backtests/matrix", body, format="json")
    assert created.status_code == 201, created.content
    _run_all_chunks(tenant_a, created.json()["id"])
    done = api_operator_a.get(f"/api/backtests/matrix/{created.json()['id']}").json()
    assert (done["status"], len(done["results"])) == ("FINISHED", 2)
    result = next(r for r in done["results"] if r["parameters"]["slow"] == 20)
    combined = _backtest_metrics(
        api_operator_a,
        tenant_a,
        {
            "strategy": "ma_crossover",
            "parameters": result["parameters"],
            "instruments": ["BTC-USD", "ETH-USD"],
            "timeframe": "1h",
            "start": body["start"],
            "end": body["split_at"],
        },
    )
    btc_only = _backtest_metrics(
        api_operator_a,
        tenant_a,
        {
            "strategy": "ma_crossover",
            "parameters": result["parameters"],
            "instruments": ["BTC-USD"],
            "timeframe": "1h",
            "start": body["start"],
            "end": body["split_at"],
        },
    )
    assert result["in_sample"]["number_of_trades"] == combined["number_of_trades"] > btc_only["number_of_trades"]
    for key in ("end_equity", "sharpe", "max_drawdown", "exposure", "fees_paid"):
        assert result["in_sample"][key] == pytest.approx(combined[key]), key
