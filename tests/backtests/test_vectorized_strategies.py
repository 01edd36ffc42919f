"""Every shipped strategy's vectorized form equals the bar-by-bar reference trade for trade, on real-shaped bars
(volatility clusters, opening gaps, flat stretches and repeated highs and lows), and the engine picks the reference
path, and says so, where the vectorized one does not apply."""

from decimal import Decimal

import numpy as np
import pytest

from backtests.engine import run_reference, run_vectorized, vectorizable
from backtests.runs import run_engine
from bots.strategies import Bars, get_strategy
from bots.strategies.builtin import _SPANS, _latch, _rolling_extremes, _rolling_sum, _zscores
from execution.fill_model import FillModel
from execution.models import Instrument
from tests.backtests.helpers import clustered_bars

COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def _fills(result):
    return [(f.decided_at, f.filled_at, f.side, f.quantity, f.price) for f in result.fills]


def _assert_same(vectorized, reference):
    assert vectorized.path == "vectorized" and reference.path == "reference"
    assert _fills(vectorized) == _fills(reference)
    assert np.allclose([f.fee for f in vectorized.fills], [f.fee for f in reference.fills], rtol=0, atol=1.1e-8)
    assert np.allclose([f.slippage for f in vectorized.fills], [f.slippage for f in reference.fills], rtol=0, atol=1e-9)
    assert vectorized.orders == reference.orders
    assert vectorized.no_trade == reference.no_trade
    assert np.array_equal(vectorized.no_trade_by_bar, reference.no_trade_by_bar)
    assert np.array_equal(vectorized.position, reference.position)
    assert np.allclose(vectorized.equity, reference.equity, rtol=0, atol=1e-6, equal_nan=True)
    assert [(t["entry_bar"], t["exit_bar"], t["side"], t["quantity"]) for t in vectorized.trades] == [
        (t["entry_bar"], t["exit_bar"], t["side"], t["quantity"]) for t in reference.trades
    ]


MODELS = [
    FillModel(),
    FillModel(slippage_ticks=1, fee_per_unit=Decimal("2.5")),
    FillModel(fill_at="close", slippage_bps=1.3, fee_bps=0.7),
]

CASES = [
    ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10}),
    ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10, "allow_short": True, "size": 3}),
    ("donchian_breakout", {"entry_lookback": 7, "exit_lookback": 7, "allow_short": True}),
    ("donchian_breakout", {"entry_lookback": 55, "exit_lookback": 1, "size": 0.5}),
    ("zscore_mean_reversion", {"lookback": 20, "entry_z": 2.0, "exit_z": 0.5}),
    ("zscore_mean_reversion", {"lookback": 30, "entry_z": 1.5, "exit_z": 0.3, "allow_short": True, "size": 2}),
    ("zscore_mean_reversion", {"lookback": 4, "entry_z": 1.0, "exit_z": 0.0, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 200, "entry_z": 1.2, "exit_z": 0.9}),
]


@pytest.mark.parametrize("model", MODELS, ids=["plain", "ticks-fees", "close-bps"])
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("tick,base", [("0.25", 4000.0), ("0.01", 101.37)])
def test_vectorized_equals_reference_trade_for_trade(model, name, params, tick, base):
    strategy = get_strategy(name)
    clean = strategy.validate(params)
    bars = clustered_bars(2500, seed=len(name) + int(clean["allow_short"]), tick=float(tick), base=base)
    kwargs = dict(model=model, tick_size=Decimal(tick), multiplier=Decimal("5"), capital=100_000.0)
    assert vectorizable(strategy, model, Decimal(tick))
    reference = run_reference(strategy, clean, bars, **kwargs)
    vectorized = run_vectorized(strategy, clean, bars, **kwargs)
    assert len(reference.fills) > 20
    _assert_same(vectorized, reference)


def test_zscore_on_two_level_windows_equals_reference():
    """Windows of two prices make |z| exactly 1 in real numbers; the floats land on either side of the threshold,
    so only the exact recomputation agrees with ``_decide`` (a flat start also gives zero dispersion)."""
    strategy = get_strategy("zscore_mean_reversion")
    rng = np.random.default_rng(3)
    levels = 101.37 + 0.01 * rng.integers(0, 3, 3000)
    close = np.repeat(levels, 2)[:3000]
    bars = Bars.from_columns(
        ts=np.arange(3000).astype("datetime64[m]"),
        open=close,
        high=close + 0.01,
        low=close - 0.01,
        close=close,
        volume=np.full(3000, 10.0),
    )
    for params in (
        {"lookback": 4, "entry_z": 1.0, "exit_z": 0.5, "allow_short": True},
        {"lookback": 6, "entry_z": 1.0, "exit_z": 0.0},
    ):
        clean = strategy.validate(params)
        kwargs = dict(model=FillModel(), tick_size=Decimal("0.01"), multiplier=Decimal("1"), capital=1e4)
        reference = run_reference(strategy, clean, bars, **kwargs)
        assert len(reference.fills) > 100
        _assert_same(run_vectorized(strategy, clean, bars, **kwargs), reference)


def test_zscores_equal_the_window_statistics_decide_computes():
    """The fast z-scores are replaced by np.mean / np.std of the window wherever they could compare differently;
    elsewhere they are within the bound of the exact ones, so every threshold comparison agrees."""
    bars = clustered_bars(3000, seed=9, tick=0.01, base=101.37)
    for lookback in (3, 9, 128, 300):
        z = _zscores(bars.close, lookback, (2.0, 0.5))
        windows = np.lib.stride_tricks.sliding_window_view(bars.close, lookback)
        exact_std = np.array([np.std(w) for w in windows])
        exact_z = np.array([(w[-1] - np.mean(w)) / s if s else np.nan for w, s in zip(windows, exact_std)])
        dispersed = exact_std != 0.0
        assert np.array_equal(np.isnan(z), ~dispersed)
        assert (~dispersed).sum() > 10 or lookback > 25  # windows inside the flat stretches of 25 bars
        for t in (-2.0, 2.0, -0.5, 0.5):
            assert np.array_equal((z <= t)[dispersed], (exact_z <= t)[dispersed])
            assert np.array_equal((z >= t)[dispersed], (exact_z >= t)[dispersed])


@pytest.mark.parametrize("allow_short", [False, True])
def test_the_latch_equals_the_state_machine_bar_by_bar(allow_short):
    """Random entry and exit signals (exits on entry bars too, exits while flat): the running-maximum form gives
    the targets of the position-dependent rule applied bar by bar."""
    rng = np.random.default_rng(12)
    n = 5000
    enter_long = rng.random(n) < 0.03
    enter_short = ~enter_long & (rng.random(n) < 0.03)
    exit_long, exit_short = rng.random(n) < 0.1, rng.random(n) < 0.1
    position, expected = 0.0, []
    for i in range(n):
        if enter_long[i]:
            position = 2.0
        elif enter_short[i]:
            position = -2.0 if allow_short else 0.0
        elif position > 0 and exit_long[i] or position < 0 and exit_short[i]:
            position = 0.0
        expected.append(position)
    got = _latch(enter_long, enter_short, exit_long, exit_short, size=2.0, allow_short=allow_short)
    assert got.tolist() == expected and len(set(expected)) == (3 if allow_short else 2)


@pytest.mark.parametrize("window", [1, 2, 3, 7, 16, 20, 55])
def test_rolling_extremes_and_sums_equal_the_window_reductions(window):
    values = clustered_bars(1000, seed=window, tick=0.25, base=4000.0).high.copy()
    values[[100, 101, 517]] = np.nan  # np.max propagates NaN; so must the rolling form
    shorter = max(1, window // 3)
    for ufunc, reduce in ((np.maximum, np.max), (np.minimum, np.min)):
        # Several windows share the doubling spans; each must still equal its own reduction.
        for w, got in zip((window, shorter), _rolling_extremes(values, (window, shorter), ufunc)):
            exact = reduce(np.lib.stride_tricks.sliding_window_view(values, w), axis=1)
            assert np.array_equal(got, exact, equal_nan=True)
    finite = np.nan_to_num(values, nan=4000.0)
    sums = _rolling_sum(finite, window)
    exact = np.lib.stride_tricks.sliding_window_view(finite, window).sum(axis=1)
    assert np.all(np.abs(sums - exact) <= window * np.finfo(float).eps * np.abs(exact))


@pytest.mark.parametrize("name,params", [CASES[1], CASES[5]])
def test_a_nan_close_holds_in_both_paths(name, params):
    strategy = get_strategy(name)
    clean = strategy.validate(params)
    bars = clustered_bars(2000, seed=4, tick=0.25, base=4000.0)
    for column in ("close", "high", "low"):
        getattr(bars, column)[[300, 301, 1200]] = np.nan
    kwargs = dict(model=FillModel(fill_at="close"), tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=1e5)
    reference = run_reference(strategy, clean, bars, **kwargs)
    _assert_same(run_vectorized(strategy, clean, bars, **kwargs), reference)


@pytest.mark.parametrize("name,params", [CASES[1], CASES[5], ("ma_crossover", {"fast": 5, "slow": 20})])
def test_the_engine_takes_the_reference_path_where_fills_may_be_partial_and_says_so(name, params):
    """One choice (``run_engine`` through ``vectorizable``) for backtests and matrices: complete fills on a 1/m
    tick take the vectorized form; a volume cap, a fractional quantity step or a tick like 0.3 take the reference,
    and the result names the path it ran."""
    strategy = get_strategy(name)
    clean = strategy.validate({**params, "size": 30})
    bars = clustered_bars(2000, seed=6, tick=0.25, base=4000.0)
    es = Instrument(symbol="ES", tick_size=Decimal("0.25"), multiplier=Decimal("50"), asset_class="future")
    odd = Instrument(symbol="ODD", tick_size=Decimal("0.3"), multiplier=Decimal("1"), asset_class="future")
    common = dict(strategy_name=name, params=clean, bars=bars, capital=1e6)
    fast = run_engine(instrument=es, model=FillModel(), **common)
    capped = run_engine(instrument=es, model=FillModel(max_volume_share=0.2), **common)
    stepped = run_engine(instrument=es, model=FillModel(min_quantity_step=Decimal("0.1")), **common)
    off_grid = run_engine(instrument=odd, model=FillModel(), **common)
    assert fast.path == "vectorized"
    assert (capped.path, stepped.path, off_grid.path) == ("reference", "reference", "reference")
    # The capped run really fills partially (what the vectorized form cannot represent).
    assert any(0 < f.quantity < 30 for f in capped.fills)
    # Without a cap the reference path gives what the vectorized one did.
    reference = run_reference(
        strategy, clean, bars, model=FillModel(), tick_size=Decimal("0.25"), multiplier=Decimal("50"), capital=1e6
    )
    _assert_same(fast, reference)


@pytest.mark.parametrize("engine", [run_reference, run_vectorized])
def test_a_run_without_a_single_fill_keeps_the_capital(engine):
    """Regression: numpy's bincount of no fills is an integer array, and adding the float capital to it raised
    (a matrix set whose thresholds are never reached stopped its whole chunk)."""
    strategy = get_strategy("zscore_mean_reversion")
    clean = strategy.validate({"lookback": 50, "entry_z": 10.0, "exit_z": 0.5})
    bars = clustered_bars(500, seed=2, tick=0.25, base=4000.0)
    result = engine(
        strategy, clean, bars, model=FillModel(), tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=1e5
    )
    assert result.fills == [] and result.trades == []
    assert result.equity.dtype == np.float64 and np.all(result.equity == 1e5)
    assert result.no_trade == {"NO_SIGNAL": 49, "ALREADY_AT_TARGET": 451}


@pytest.mark.parametrize(
    "name,space",
    [
        ("donchian_breakout", {"entry_lookback": [10, 30], "exit_lookback": [5, 10], "allow_short": [False, True]}),
        (
            "zscore_mean_reversion",
            {"lookback": [15, 40], "entry_z": [1.5, 2.5], "exit_z": [0.0, 0.5], "allow_short": [True]},
        ),
    ],
)
def test_a_matrix_set_scores_alike_on_either_path(name, space):
    """The matrix's per-set work (``evaluate``: engine, metrics) for every strategy goes through the same choice; a
    volume cap no bar reaches sends it bar by bar with the same complete fills, so the metrics must not differ."""
    from backtests.matrices import expand_sets
    from backtests.matrix_chunks import evaluate

    bars = clustered_bars(2500, seed=8, tick=0.25, base=4000.0, minutes=60)  # 104 days: annualized figures too
    bars.volume[:] = 1e6
    es = Instrument(symbol="ES", tick_size=Decimal("0.25"), multiplier=Decimal("50"), asset_class="future")
    costs = dict(slippage_ticks=1, fee_per_unit=Decimal("2.5"))
    sets = expand_sets(strategy=name, base={}, space=space, mode="grid", samples=None, seed=0)
    assert len(sets) >= 8
    for params in sets:
        common = dict(strategy=name, params=params, legs=[(es, bars)], capital=1e6, days_per_year=252)
        fast = evaluate(model=FillModel(**costs), **common)
        reference = evaluate(model=FillModel(max_volume_share=1.0, **costs), **common)
        assert fast.keys() == reference.keys() and fast["sharpe"] is not None
        for key, value in fast.items():
            numeric = isinstance(value, float) and isinstance(reference[key], float)
            assert value == (pytest.approx(reference[key], rel=1e-9, abs=1e-9) if numeric else reference[key]), key
        assert fast["number_of_trades"] > 5


def test_kept_spans_never_answer_for_changed_values():
    """The span tables kept between calls (a matrix chunk's sets share them) are used only while the series holds
    the values they were built from: an array changed in place gets fresh spans, and so do equal calls' results."""
    values = clustered_bars(3000, seed=21, tick=0.25, base=4000.0).close.copy()
    first = _rolling_sum(values, 37)
    assert np.array_equal(_rolling_sum(values, 37), first)  # from the kept table
    values[1000] += 100.0
    fresh = np.lib.stride_tricks.sliding_window_view(values, 37).sum(axis=1)
    changed = _rolling_sum(values, 37)
    assert np.allclose(changed, fresh, rtol=0, atol=1e-7) and changed[1000] - first[1000] == pytest.approx(100.0)
    high = _rolling_extremes(values, (400, 9), np.maximum)
    values[2000] = 1e9
    again = _rolling_extremes(values, (400, 9), np.maximum)
    assert again[0][1700] == 1e9 and high[0][1700] != 1e9
    assert np.array_equal(again[1], np.max(np.lib.stride_tricks.sliding_window_view(values, 9), axis=1))


def test_kept_spans_stay_within_their_budget():
    kept = _SPANS.__class__(budget=1 << 20)  # 1 MiB
    series = [np.arange(20_000, dtype=float) + k for k in range(5)]  # 160 kB each, 2 spans kept: 480 kB an entry
    for values in series:
        kept.table(values, np.add, 2)
    assert len(kept._entries) == 2
    big = np.arange(200_000, dtype=float)  # its table alone exceeds the budget: built, not kept
    assert len(kept.table(big, np.add, 1024)) == 11 and len(kept._entries) == 2


@pytest.mark.parametrize(
    "name,params",
    [
        ("ma_crossover", {"fast": 10, "slow": 30}),
        ("ma_crossover", {"fast": 3, "slow": 7, "allow_short": True}),
        ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10, "allow_short": True}),
        ("zscore_mean_reversion", {"lookback": 20, "entry_z": 1.5, "exit_z": 0.3, "allow_short": True}),
    ],
)
def test_a_missing_close_holds_only_while_a_window_holds_it(name, params):
    """A NaN close (a hole in a stored series) makes every window that holds it undecidable, which ``_decide``
    reads as HOLD; once the windows have passed it the strategy trades again, on both paths."""
    strategy = get_strategy(name)
    clean = strategy.validate(params)
    bars = clustered_bars(2000, seed=7, tick=0.25, base=4000.0)
    bars.close[[400, 401, 1300]] = np.nan
    kwargs = dict(model=FillModel(), tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=100_000.0)
    reference = run_reference(strategy, clean, bars, **kwargs)
    vectorized = run_vectorized(strategy, clean, bars, **kwargs)
    assert sum(f.decided_at > 1400 for f in reference.fills) > 5
    _assert_same(vectorized, reference)
