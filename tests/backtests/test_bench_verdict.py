"""The backtest speed bench's verdict: the comparison that confirms (or refutes) identical trades with
backtesting.py. The bench itself needs backtesting.py from a throwaway venv; the verdict is plain Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "backtest_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_backtest_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_identical_trades_counts_both_sides_and_says_n_of_n(bench):
    trades = [(30, 1, 4000.5, 64, 4002.25), (70, 1, 4001.0, 90, 3999.75), (95, 1, 4003.0, None, None)]
    identical, lines = bench.compare_trades(trades, list(trades))
    assert identical
    assert lines == [
        "trades: ours 2 closed + 1 open at the end, backtesting.py 2 closed + 1 open at the end",
        "identical trades: 3 of 3",
    ]


def test_a_later_entry_is_reported_with_both_sides_bar_side_and_price(bench):
    ours = [(30, 1, 4000.5, 64, 4002.25), (70, 1, 4001.0, 90, 3999.75)]
    theirs = [(31, 1, 4003.5, 64, 4002.25), (70, 1, 4001.0, 90, 3999.75)]
    identical, lines = bench.compare_trades(ours, theirs)
    assert not identical
    assert lines[-1] == (
        "trades DIFFER; first difference: ours trade #1 entry: bar 30 BUY @ 4000.50; "
        "backtesting.py trade #1 entry: bar 31 BUY @ 4003.50"
    )


def test_a_missing_exit_or_trade_is_a_difference(bench):
    ours = [(30, -1, 4000.5, 64, 4002.25), (70, 1, 4001.0, None, None)]
    open_only = [(30, -1, 4000.5, 64, 4002.25), (70, 1, 4001.0, 90, 3999.75)]
    identical, lines = bench.compare_trades(ours, open_only)
    assert not identical
    assert lines[-1].endswith("ours no such fill; backtesting.py trade #2 exit: bar 90 SELL @ 3999.75")
    identical, lines = bench.compare_trades(ours[:1], [])
    assert not identical
    assert lines[-1] == (
        "trades DIFFER; first difference: ours trade #1 entry: bar 30 SELL @ 4000.50; backtesting.py no such fill"
    )
