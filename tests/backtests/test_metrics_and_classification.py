import math
from datetime import datetime, timedelta, timezone

import pytest

from backtests.classification import BacktestThresholds, Classification, classify
from backtests.metrics import TradeResult, compute_metrics

DAY0 = datetime(2026, 1, 5, 21, tzinfo=timezone.utc)


def days(n):
    return [DAY0 + timedelta(days=i) for i in range(n)]


def test_metrics_of_a_known_curve():
    equity = [100.0, 110.0, 99.0, 108.9, 121.0]
    trades = [
        TradeResult(pnl=10, fees=1, slippage=0.5, notional=200),
        TradeResult(pnl=-11, fees=1, notional=220),
        TradeResult(pnl=22.1, fees=1, slippage=0.5, notional=230),
    ]
    m = compute_metrics(
        timestamps=days(5),
        equity=equity,
        trades=trades,
        exposure_flags=[False, True, True, False, True],
        min_days_for_annualized=0,
    )
    assert m["total_return"] == pytest.approx(0.21)
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["max_drawdown_duration_days"] == pytest.approx(3)  # peak on day 1, back above it on day 4
    assert m["number_of_trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(32.1 / 11)
    assert m["average_trade"] == pytest.approx(21.1 / 3)
    assert m["exposure"] == pytest.approx(0.6)
    assert m["fees_paid"] == 3 and m["slippage_paid"] == 1
    assert m["turnover"] == pytest.approx(650 / (sum(equity) / 5))
    returns = [0.1, -0.1, 0.1, 121 / 108.9 - 1]
    mean = sum(returns) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["volatility"] == pytest.approx(std * math.sqrt(252))


def test_undefined_metrics_are_none_not_zero():
    m = compute_metrics(timestamps=days(2), equity=[100.0, 100.0], trades=[])
    assert m["number_of_trades"] == 0
    for key in ("win_rate", "profit_factor", "average_trade", "sharpe", "sortino", "calmar", "exposure"):
        assert m[key] is None, key


def test_metrics_refuse_a_curve_too_short_to_mean_anything():
    with pytest.raises(ValueError):
        compute_metrics(timestamps=days(1), equity=[100.0], trades=[])


GOOD = {"number_of_trades": 40, "sharpe": 1.4, "max_drawdown": 0.1, "profit_factor": 1.6}


def test_a_good_run_passes_with_every_reason_recorded():
    verdict, reasons = classify(GOOD)
    assert verdict is Classification.PASS
    assert [r["check"] for r in reasons] == ["number_of_trades", "sharpe", "max_drawdown", "profit_factor"]


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"sharpe": 0.7}, Classification.MARGINAL),
        ({"sharpe": 0.2}, Classification.FAIL),
        ({"sharpe": None}, Classification.FAIL),
        ({"max_drawdown": 0.25}, Classification.MARGINAL),
        ({"max_drawdown": 0.5}, Classification.FAIL),
        ({"number_of_trades": 3}, Classification.FAIL),
    ],
)
def test_the_worst_check_decides(change, expected):
    assert classify(GOOD | change)[0] is expected


def test_out_of_sample_decay_is_checked():
    verdict, reasons = classify(GOOD, oos_metrics={"sharpe": 0.2})
    assert verdict is Classification.FAIL
    assert reasons[-1]["check"] == "oos_is_sharpe_ratio"


def test_tenant_thresholds_override_and_unknown_names_are_refused():
    assert (
        classify(GOOD, thresholds=BacktestThresholds.from_overrides({"min_sharpe": 2.0}))[0] is Classification.MARGINAL
    )
    with pytest.raises(ValueError, match="min_sharp"):
        BacktestThresholds.from_overrides({"min_sharp": 2})
