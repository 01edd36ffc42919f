"""Backtest runs over the API: create, run as a job, progress, metrics, traces, gaps, cancel, the promotion gate."""

from datetime import timedelta

import pytest
from django.db import transaction

from backtests.models import BacktestRun
from bots import services as bot_services
from bots.models import Job
from controlplane import tenancy
from tests.backtests.helpers import START, store_walk
from tests.factories import InstrumentFactory
from traces.models import TickTrace

LENIENT = {
    "min_trades": 5,
    "marginal_min_trades": 1,
    "min_sharpe": -100,
    "marginal_min_sharpe": -200,
    "max_drawdown": 0.9,
    "marginal_max_drawdown": 0.95,
    "min_profit_factor": 0.0,
    "marginal_min_profit_factor": 0.0,
}


@pytest.fixture
def btc(db):
    instrument = InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    return instrument


def _body(**overrides):
    body = {
        "strategy": "ma_crossover",
        "parameters": {"fast": 5, "slow": 20},
        "instruments": ["BTC-USD"],
        "timeframe": "1h",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=2000)).isoformat(),
        "fill_model": {"slippage_bps": 1, "fee_bps": 2},
        "starting_capital": "100000",
    }
    body.update(overrides)
    return body


def _run_job(tenant, run_id):
    """What the worker does for the job: claim and run it (the real service, synchronously)."""
    with tenancy.tenant_context(tenant.id):
        job_id = BacktestRun.objects.get(pk=run_id).job_id
        bot_services.job_execute(job_id=job_id)
        return BacktestRun.objects.get(pk=run_id), Job.objects.get(pk=job_id)


def test_backtest_runs_and_reports_metrics_curve_trades_and_traces(api_operator_a, tenant_a, btc):
    store_walk(btc, 2000, timeframe="1h", base=30000.0, seed=4)
    response = api_operator_a.post("/api/backtests", _body(), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["status"], created["job"] is not None) == ("QUEUED", True)

    run, job = _run_job(tenant_a, created["id"])
    assert (run.status, job.status) == ("FINISHED", "SUCCEEDED")
    detail = api_operator_a.get(f"/api/backtests/{run.id}").json()
    assert (detail["bars_done"], detail["bars_total"], detail["progress"]) == (2000, 2000, 1.0)
    assert detail["engine_path"] == "vectorized"
    metrics = detail["metrics"]
    assert metrics["number_of_trades"] == len(detail["trades"]) > 10
    assert metrics["fees_paid"] > 0 and metrics["slippage_paid"] > 0
    assert detail["equity_curve"][0][1] == pytest.approx(100000.0)
    assert detail["classification"] in ("PASS", "MARGINAL", "FAIL") and detail["classification_reasons"]
    assert sum(detail["no_trade_counts"]["total"].values()) + sum(1 for _ in detail["trades"]) <= 2000
    assert set(detail["no_trade_counts"]["by_month"]) >= {"2026-03", "2026-04"}
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        traces = list(TickTrace.objects.filter(context="backtest", run_ref=run.id))
    assert len(traces) >= metrics["number_of_trades"] * 2 - 1
    assert all(t.kind == "decision" and "fast_ma" in t.signal["values"] for t in traces)


def test_the_run_takes_the_reference_path_under_a_volume_cap_and_the_vectorized_one_without(
    api_operator_a, tenant_a, btc
):
    """Every shipped strategy has a vectorized form; a volume cap (partial fills) sends the run bar by bar, and
    the run records which path it took."""
    store_walk(btc, 600, timeframe="1h", base=30000.0, seed=9)
    common = dict(
        strategy="donchian_breakout",
        parameters={"entry_lookback": 20, "exit_lookback": 5},
        end=(START + timedelta(hours=600)).isoformat(),
    )
    capped = _body(fill_model={"slippage_bps": 1, "fee_bps": 2, "max_volume_share": 0.9}, **common)
    run, _ = _run_job(tenant_a, api_operator_a.post("/api/backtests", capped, format="json").json()["id"])
    assert (run.status, run.engine_path, run.bars_done) == ("FINISHED", "reference", 600)
    assert run.metrics["number_of_trades"] > 0
    uncapped, _ = _run_job(tenant_a, api_operator_a.post("/api/backtests", _body(**common), format="json").json()["id"])
    assert (uncapped.status, uncapped.engine_path) == ("FINISHED", "vectorized")
    assert uncapped.metrics["number_of_trades"] > 0


def test_a_range_with_missing_bars_is_refused_with_the_gaps_listed(api_operator_a, tenant_a, btc):
    store_walk(btc, 300, timeframe="1h", base=30000.0, skip=frozenset({100, 101, 102}))
    run_id = api_operator_a.post(
        "/api/backtests", _body(end=(START + timedelta(hours=300)).isoformat()), format="json"
    ).json()["id"]
    run, job = _run_job(tenant_a, run_id)
    assert (run.status, run.error_code, job.error_code) == ("FAILED", "BACKTEST_DATA_GAPS", "BACKTEST_DATA_GAPS")
    assert run.gaps == [
        {
            "instrument": "BTC-USD",
            "start": (START + timedelta(hours=100)).isoformat(),
            "end": (START + timedelta(hours=103)).isoformat(),
            "missing_bars": 3,
        }
    ]
    assert run.metrics == {} and run.trades == []


def test_gaps_reported_when_asked_and_never_filled(api_operator_a, tenant_a, btc):
    store_walk(btc, 300, timeframe="1h", base=30000.0, skip=frozenset({100, 101, 102}))
    body = _body(end=(START + timedelta(hours=310)).isoformat(), gap_policy="report")
    run, _ = _run_job(tenant_a, api_operator_a.post("/api/backtests", body, format="json").json()["id"])
    assert run.status == "FINISHED"
    assert run.bars_total == 297  # the stored bars only
    assert [g["missing_bars"] for g in run.gaps] == [3, 10]


def test_no_bars_fails_closed(api_operator_a, tenant_a, btc):
    run, _ = _run_job(tenant_a, api_operator_a.post("/api/backtests", _body(), format="json").json()["id"])
    assert (run.status, run.error_code, run.metrics) == ("FAILED", "BACKTEST_NO_DATA", {})


def test_validation_errors_name_the_field_and_create_nothing(api_operator_a, tenant_a, btc):
    cases = [
        (_body(strategy="nope"), "strategy"),
        (_body(parameters={"fast": 30, "slow": 20}), "parameters"),
        (_body(instruments=["NOPE"]), "instruments"),
        (_body(timeframe="7m"), "timeframe"),
        (_body(end=START.isoformat()), "end"),
        (_body(fill_model={"slipage_bps": 1}), "fill_model"),
        (_body(gap_policy="fill"), "gap_policy"),
    ]
    for body, field in cases:
        response = api_operator_a.post("/api/backtests", body, format="json")
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["details"], (field, response.json())
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        assert not BacktestRun.objects.exists() and not Job.objects.exists()


def test_cancel_stops_a_queued_run_and_its_job(api_operator_a, tenant_a, btc):
    store_walk(btc, 100, timeframe="1h", base=30000.0)
    run_id = api_operator_a.post("/api/backtests", _body(), format="json").json()["id"]
    response = api_operator_a.post(f"/api/backtests/{run_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    run, job = _run_job(tenant_a, run_id)
    assert (run.status, job.status, run.bars_done) == ("CANCELLED", "CANCELLED", 0)
    again = api_operator_a.post(f"/api/backtests/{run_id}/cancel")
    assert (again.status_code, again.json()["error_code"]) == (409, "ILLEGAL_TRANSITION")


def test_bot_backtest_pass_opens_the_gate_to_backtested(api_owner_a, tenant_a, btc):
    store_walk(btc, 1500, timeframe="1h", base=30000.0, seed=4)
    assert api_owner_a.put("/api/backtests/thresholds", {"thresholds": LENIENT}, format="json").status_code == 200
    bot = api_owner_a.post(
        "/api/bots",
        {"name": "b", "strategy": "ma_crossover", "parameters": {"fast": 5, "slow": 20}, "instruments": ["BTC-USD"]},
        format="json",
    ).json()
    refused = api_owner_a.post(f"/api/bots/{bot['id']}/promote", {"to": "BACKTESTED"}, format="json")
    assert refused.status_code == 409
    body = {
        "bot_id": bot["id"],
        "timeframe": "1h",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=1500)).isoformat(),
    }
    run_id = api_owner_a.post("/api/backtests", body, format="json").json()["id"]
    run, _ = _run_job(tenant_a, run_id)
    assert (run.status, run.classification) == ("FINISHED", "PASS"), run.classification_reasons
    assert (run.bot_id, run.parameters_hash) == (bot["id"], bot["parameters_hash"])  # what the gate reads
    promoted = api_owner_a.post(f"/api/bots/{bot['id']}/promote", {"to": "BACKTESTED"}, format="json")
    assert promoted.status_code == 200, promoted.content
    assert promoted.json()["stage"] == "BACKTESTED"


def test_bot_backtest_takes_the_bots_timeframe_unless_the_request_names_one(api_owner_a, tenant_a, btc):
    store_walk(btc, 300, timeframe="4h", base=30000.0, seed=4)
    bot = api_owner_a.post(
        "/api/bots",
        {
            "name": "b4h",
            "strategy": "ma_crossover",
            "timeframe": "4h",
            "parameters": {"fast": 5, "slow": 20},
            "instruments": ["BTC-USD"],
        },
        format="json",
    ).json()
    span = {"start": START.isoformat(), "end": (START + timedelta(hours=4 * 300)).isoformat()}
    created = api_owner_a.post("/api/backtests", {"bot_id": bot["id"], **span}, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["timeframe"], created.json()["strategy"]) == ("4h", "ma_crossover")
    run, _ = _run_job(tenant_a, created.json()["id"])
    assert (run.status, run.bars_total) == ("FINISHED", 300)

    named = api_owner_a.post("/api/backtests", {"bot_id": bot["id"], "timeframe": "1h", **span}, format="json")
    assert named.json()["timeframe"] == "1h"
    no_bot = api_owner_a.post("/api/backtests", {k: v for k, v in _body().items() if k != "timeframe"}, format="json")
    assert (no_bot.status_code, no_bot.json()["details"]) == (400, {"timeframe": ["Give a timeframe or a bot_id."]})


def test_two_instrument_backtest_traces_every_order_of_each_instrument(api_operator_a, tenant_a, btc):
    eth = InstrumentFactory(
        symbol="ETH-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )
    # The same walk on both: every decision of one falls on the same bar as the other's, the case that collided.
    store_walk(btc, 600, timeframe="1h", base=30000.0, seed=4)
    store_walk(eth, 600, timeframe="1h", base=30000.0, seed=4)
    body = _body(instruments=["BTC-USD", "ETH-USD"], end=(START + timedelta(hours=600)).isoformat())
    run, _ = _run_job(tenant_a, api_operator_a.post("/api/backtests", body, format="json").json()["id"])
    assert (run.status, run.bars_total) == ("FINISHED", 1200), run.error_message
    by_instrument = {s: [t for t in run.trades if t["instrument"] == s] for s in ("BTC-USD", "ETH-USD")}
    assert len(by_instrument["BTC-USD"]) == len(by_instrument["ETH-USD"]) > 5
    assert run.metrics["number_of_trades"] == len(run.trades)
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():
        traces = list(TickTrace.objects.filter(context="backtest", run_ref=run.id).values_list("instrument", "bar_ts"))
    btc_traces = sorted(ts for symbol, ts in traces if symbol == "BTC-USD")
    eth_traces = sorted(ts for symbol, ts in traces if symbol == "ETH-USD")
    assert btc_traces == eth_traces and len(btc_traces) >= 2 * len(by_instrument["BTC-USD"]) - 1


def test_default_thresholds_fail_a_short_run(api_owner_a, tenant_a, btc):
    store_walk(btc, 300, timeframe="1h", base=30000.0, seed=4)
    body = _body(end=(START + timedelta(hours=300)).isoformat())
    run, _ = _run_job(tenant_a, api_owner_a.post("/api/backtests", body, format="json").json()["id"])
    reasons = {r["check"]: r["result"] for r in run.classification_reasons}
    assert run.classification == "FAIL" and reasons["number_of_trades"] in ("FAIL", "MARGINAL")


def test_personas_and_tenant_isolation(api_owner_a, api_viewer_a, api_owner_b, tenant_a, btc):
    store_walk(btc, 50, timeframe="1h", base=30000.0)
    assert api_viewer_a.post("/api/backtests", _body(), format="json").status_code == 403
    assert api_viewer_a.put("/api/backtests/thresholds", {"thresholds": {}}, format="json").status_code == 403
    run_id = api_owner_a.post("/api/backtests", _body(), format="json").json()["id"]
    assert api_viewer_a.get(f"/api/backtests/{run_id}").status_code == 200
    assert api_viewer_a.post(f"/api/backtests/{run_id}/cancel").status_code == 403
    assert [r["id"] for r in api_viewer_a.get("/api/backtests").json()["results"]] == [run_id]
    assert api_owner_b.get(f"/api/backtests/{run_id}").status_code == 404
    assert api_owner_b.post(f"/api/backtests/{run_id}/cancel").status_code == 404
    assert api_owner_b.get("/api/backtests").json()["results"] == []
    assert api_owner_b.put("/api/backtests/thresholds", {"thresholds": {"nope": 1}}, format="json").json()[
        "details"
    ] == {"thresholds": ["unknown thresholds: nope"]}
