"""Matrices: expansion, fan-out in chunks, progress, idempotent chunks, ranking by out-of-sample, cancel."""

from datetime import timedelta

import pytest
from django.db import transaction

from backtests import matrices
from backtests.models import BacktestMatrix, MatrixResult
from controlplane import tenancy
from tests.backtests.helpers import START, store_walk
from tests.factories import InstrumentFactory


@pytest.fixture
def btc(db):
    return InstrumentFactory(symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01",
                             multiplier="1", calendar="24/7")


def _body(**overrides):
    body = {"strategy": "ma_crossover", "mode": "grid", "space": {"fast": [3, 5, 40], "slow": [20, 30]},
            "instruments": ["BTC-USD"], "timeframe": "1h", "start": START.isoformat(),
            "end": (START + timedelta(hours=1200)).isoformat(),
            "split_at": (START + timedelta(hours=800)).isoformat()}
    body.update(overrides)
    return body


def _chunks(matrix):
    size = matrices.settings.BACKTEST_MATRIX_CHUNK_SIZE
    return [(lo, min(lo + size, matrix.sets_total)) for lo in range(0, matrix.sets_total, size)]


def test_grid_fans_out_in_chunks_and_ranks_by_out_of_sample(api_operator_a, tenant_a, btc, settings):
    settings.BACKTEST_MATRIX_CHUNK_SIZE = 2
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
        assert matrices.run_chunk(matrix_id=matrix.id, first=first[0], stop=first[1]) == 2
        assert matrices.run_chunk(matrix_id=matrix.id, first=first[0], stop=first[1]) == 0  # a retry: nothing new
    half = api_operator_a.get(f"/api/backtests/matrix/{matrix.id}").json()
    assert (half["sets_done"], half["progress"], half["status"]) == (2, 0.5, "RUNNING")
    with tenancy.tenant_context(tenant_a.id):
        assert matrices.run_chunk(matrix_id=matrix.id, first=second[0], stop=second[1]) == 2
    done = api_operator_a.get(f"/api/backtests/matrix/{matrix.id}").json()
    assert (done["status"], done["sets_done"], len(done["results"])) == ("FINISHED", 4, 4)
    scores = [r["score"] for r in done["results"]]
    assert [s for s in scores if s is not None] == sorted([s for s in scores if s is not None], reverse=True)
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
    cases = [(_body(space={"nope": [1]}), "space"), (_body(mode="random"), "samples"),
             (_body(split_at=START.isoformat()), "split_at"), (_body(instruments=["NOPE"]), "instruments"),
             (_body(walk_forward_folds=3), "walk_forward_folds")]
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
        assert matrices.run_chunk(matrix_id=matrix_id, first=0, stop=4) == 0
        with transaction.atomic():
            assert not MatrixResult.objects.filter(matrix_id=matrix_id).exists()
    assert api_viewer_a.get(f"/api/backtests/matrix/{matrix_id}").json()["status"] == "CANCELLED"
