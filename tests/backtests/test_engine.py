"""The engine: the vectorized path equals the bar-by-bar reference trade for trade; accounting by hand."""

from decimal import Decimal

import numpy as np
import pytest

from backtests.engine import run_reference, run_vectorized, vectorizable
from bots.strategies import Bars, get_strategy
from execution.fill_model import FillModel
from tests.backtests.helpers import memory_bars


def _fills(result):
    return [(f.decided_at, f.filled_at, f.side, f.quantity, f.price) for f in result.fills]


MODELS = [
    FillModel(),
    FillModel(slippage_ticks=1, fee_per_unit=Decimal("2.5")),
    FillModel(fill_at="close", slippage_bps=1.3, fee_bps=0.7),
    FillModel(slippage_bps=0.37),
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("params", [{"fast": 5, "slow": 20}, {"fast": 8, "slow": 40, "allow_short": True, "size": 3}])
@pytest.mark.parametrize("tick", ["0.25", "0.01"])
def test_vectorized_matches_reference_trade_for_trade(model, params, tick):
    strategy = get_strategy("ma_crossover")
    clean = strategy.validate(params)
    bars = memory_bars(3000, tick=float(tick), base=101.37 if tick == "0.01" else 4000.0, seed=11)
    kwargs = dict(model=model, tick_size=Decimal(tick), multiplier=Decimal("5"), capital=100_000.0)
    assert vectorizable(strategy, model, Decimal(tick))
    reference = run_reference(strategy, clean, bars, **kwargs)
    vectorized = run_vectorized(strategy, clean, bars, **kwargs)
    assert len(reference.fills) > 50
    assert _fills(vectorized) == _fills(reference)
    # Fees and slippage: decimals in the reference, floats here; equal to the fee's 1e-8 quantum.
    assert np.allclose([f.fee for f in vectorized.fills], [f.fee for f in reference.fills], rtol=0, atol=1.1e-8)
    assert np.allclose([f.slippage for f in vectorized.fills], [f.slippage for f in reference.fills], rtol=0, atol=1e-9)
    assert vectorized.orders == reference.orders
    assert vectorized.no_trade == reference.no_trade
    assert np.allclose(vectorized.equity, reference.equity, rtol=0, atol=1e-6)
    assert [(t["entry_bar"], t["exit_bar"], t["side"]) for t in vectorized.trades] == [
        (t["entry_bar"], t["exit_bar"], t["side"]) for t in reference.trades
    ]


def test_vectorized_matches_reference_where_the_moving_averages_tie():
    """A flat stretch makes fast == slow exactly; the cumulative sums must not invent a cross there."""
    strategy = get_strategy("ma_crossover")
    clean = strategy.validate({"fast": 3, "slow": 6})
    close = np.array([100.1] * 20 + [100.3, 100.2, 100.1] * 30 + [100.7] * 10 + [99.9] * 10)
    bars = Bars.from_columns(
        ts=np.arange(len(close)).astype("datetime64[m]"),
        open=close,
        high=close + 0.2,
        low=close - 0.2,
        close=close,
        volume=np.full(len(close), 10.0),
    )
    kwargs = dict(model=FillModel(), tick_size=Decimal("0.1"), multiplier=Decimal("1"), capital=1000.0)
    assert _fills(run_vectorized(strategy, clean, bars, **kwargs)) == _fills(
        run_reference(strategy, clean, bars, **kwargs)
    )


def test_vectorized_matches_reference_over_many_ties():
    """Over ten thousand tied bars (flat stretches between moves) take the vectorized hold-forward path."""
    strategy = get_strategy("ma_crossover")
    clean = strategy.validate({"fast": 2, "slow": 5, "allow_short": True})
    rng = np.random.default_rng(5)
    levels = 100.0 + np.cumsum(rng.choice([-0.3, 0.2, 0.5, -0.6], 320))
    close = np.concatenate([np.concatenate((np.full(40, level), level + 0.1 * np.arange(1, 4))) for level in levels])
    means = np.lib.stride_tricks.sliding_window_view(close, 5)
    assert np.count_nonzero(means[:, 3:].mean(axis=1) == means.mean(axis=1)) > 10_000
    bars = Bars.from_columns(
        ts=np.arange(len(close)).astype("datetime64[m]"),
        open=close,
        high=close + 0.2,
        low=close - 0.2,
        close=close,
        volume=np.full(len(close), 10.0),
    )
    kwargs = dict(model=FillModel(), tick_size=Decimal("0.1"), multiplier=Decimal("1"), capital=1000.0)
    vectorized = run_vectorized(strategy, clean, bars, **kwargs)
    reference = run_reference(strategy, clean, bars, **kwargs)
    assert len(reference.fills) > 300 and _fills(vectorized) == _fills(reference)
    assert vectorized.no_trade == reference.no_trade


def test_reference_fills_on_the_next_bar_open_and_accounts_by_hand():
    """Fast 1 / slow 2 on a hand series: the orders, fill prices, equity and the round trip, computed by hand."""
    strategy = get_strategy("ma_crossover")
    clean = strategy.validate({"fast": 1, "slow": 2})
    close = np.array([10.0, 11.0, 12.0, 11.0, 10.0, 10.0])
    open_ = np.array([10.0, 10.5, 11.5, 12.5, 10.5, 9.5])
    bars = Bars.from_columns(
        ts=np.arange(6).astype("datetime64[D]"),
        open=open_,
        high=np.maximum(open_, close) + 1,
        low=np.minimum(open_, close) - 1,
        close=close,
        volume=np.full(6, 100.0),
    )
    result = run_reference(
        strategy,
        clean,
        bars,
        model=FillModel(fee_per_unit=Decimal("1")),
        tick_size=Decimal("0.5"),
        multiplier=Decimal("2"),
        capital=1000.0,
    )
    # Bar 1: close 11 > mean(10, 11) → buy 1, filled at bar 2's open 11.5. Bar 3: 11 < 11.5 → sell at bar 4 open 10.5.
    assert _fills(result) == [(1, 2, 1, 1.0, 11.5), (3, 4, -1, 1.0, 10.5)]
    assert result.no_trade == {"NO_SIGNAL": 1, "ALREADY_AT_TARGET": 3}
    # Equity: cash - fees + position × close × 2. Bar 2: 1000 - 23 - 1 + 24 = 1000; bar 3: 998; bar 4: 1000 - 24 + 21 - 1 = 996.
    assert list(result.equity) == [1000.0, 1000.0, 1000.0, 998.0, 996.0, 996.0]
    assert result.trades == [
        {
            "entry_bar": 2,
            "exit_bar": 4,
            "side": 1,
            "quantity": 1.0,
            "entry_price": 11.5,
            "exit_price": 10.5,
            "pnl": -4.0,
            "fees": 2.0,
            "slippage": 0.0,
            "notional": 44.0,
        }
    ]


def test_reference_with_a_volume_cap_fills_partially_and_reorders_the_rest():
    strategy = get_strategy("ma_crossover")
    clean = strategy.validate({"fast": 2, "slow": 5, "size": 30})
    bars = memory_bars(400, seed=3)
    model = FillModel(max_volume_share=0.5)
    assert not vectorizable(strategy, model, Decimal("0.25"))
    result = run_reference(
        strategy, clean, bars, model=model, tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=10_000.0
    )
    partial = [f for f in result.fills if f.quantity < 30]
    assert partial and all(f.quantity <= bars.volume[f.filled_at] * 0.5 for f in result.fills)
    assert np.all(np.abs(result.position) <= 30)


@pytest.mark.parametrize(
    "name,params",
    [
        ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10, "allow_short": True}),
        ("zscore_mean_reversion", {"lookback": 30, "entry_z": 1.5, "exit_z": 0.3}),
    ],
)
def test_reference_runs_every_shipped_strategy_as_decide_replays(name, params):
    strategy = get_strategy(name)
    clean = strategy.validate(params)
    bars = memory_bars(2000, seed=5)
    result = run_reference(
        strategy, clean, bars, model=FillModel(), tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=10_000.0
    )
    assert len(result.fills) > 10
    # Every order equals target − position at its decision: replaying decide() gives the same targets.
    position = 0.0
    fills = iter(result.fills)
    for i in result.orders[:20]:
        window = Bars(
            *(
                getattr(bars, c)[max(0, i + 1 - strategy.warmup_bars(clean)) : i + 1]
                for c in ("ts", "open", "high", "low", "close", "volume")
            )
        )
        position = float(result.position[i])
        fill = next(fills)
        assert fill.decided_at == i
        assert strategy.decide(clean, window, position).target == position + fill.side * fill.quantity


@pytest.mark.parametrize("allow_short", [False, True])
def test_round_trips_in_numpy_equal_the_fill_by_fill_loop(allow_short):
    from backtests.round_trips import round_trips, round_trips_loop

    strategy = get_strategy("ma_crossover")
    clean = strategy.validate({"fast": 4, "slow": 12, "allow_short": allow_short, "size": 2})
    result = run_reference(
        strategy,
        clean,
        memory_bars(1500, seed=8),
        model=FillModel(slippage_ticks=1, fee_per_unit=Decimal("1.5")),
        tick_size=Decimal("0.25"),
        multiplier=Decimal("50"),
        capital=1e6,
    )
    fast, loop = round_trips(result.fill_columns, 50.0), round_trips_loop(result.fill_columns, 50.0)
    assert len(fast) == len(loop) > 20
    for a, b in zip(fast, loop):
        assert a.keys() == b.keys()
        assert all(a[k] == pytest.approx(b[k], abs=1e-6) if a[k] is not None else b[k] is None for k in a)
