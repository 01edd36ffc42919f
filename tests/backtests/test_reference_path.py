"""The fast reference path decides exactly as ``decide`` bar by bar: same orders, fills, reasons and equity as the
plain loop it replaced (kept here as the definition), for every shipped strategy, a strategy with only
``_decide`` and one that overrides ``decide``, across fill models, partial fills and decimal-only positions."""

import dataclasses
from decimal import Decimal

import numpy as np
import pytest

from backtests.engine import Fill, _account, _book, _columns, _fill_bar, run_reference
from bots.strategies import Bars, Decision, ParamSpec, Strategy, get_strategy
from bots.strategies.base import BAR_COLUMNS
from bots.strategies.windows import SeriesWindows
from execution.fill_model import FillAt, FillModel, OrderType, Side, SimOrder, simulate_fill
from execution.risk.pnl import PositionState
from tests.backtests.helpers import memory_bars


def decide_bar_by_bar(strategy, params, bars, *, model, tick_size, multiplier, capital):
    """The reference loop as it was: a full Bars window and ``strategy.decide`` at every bar, decimal deltas."""
    n = len(bars)
    warmup = strategy.warmup_bars(params)
    state = PositionState()
    fills: list[Fill] = []
    orders: list[int] = []
    unfilled: list[int] = []
    reasons = np.zeros(n, dtype=np.int8)
    pending = None
    for i in range(n):
        if pending is not None:
            decided, order = pending
            pending = None
            fill = simulate_fill(order, _fill_bar(bars, i), model=model, tick_size=tick_size, multiplier=multiplier)
            state = _book(fills, state, decided, i, order, fill, multiplier, unfilled)
        window = Bars(*(getattr(bars, c)[max(0, i + 1 - warmup) : i + 1] for c in BAR_COLUMNS))
        decision = strategy.decide(params, window, float(state.quantity))
        if decision.target is None:
            reasons[i] = 1
            continue
        delta = Decimal(repr(decision.target)) - state.quantity
        if delta == 0:
            reasons[i] = 2
            continue
        orders.append(i)
        order = SimOrder(Side.BUY if delta > 0 else Side.SELL, abs(delta), OrderType.MARKET)
        if model.fill_at is FillAt.CLOSE:
            fill = simulate_fill(order, _fill_bar(bars, i), model=model, tick_size=tick_size, multiplier=multiplier)
            state = _book(fills, state, i, i, order, fill, multiplier, unfilled)
        elif i + 1 < n:
            pending = (i, order)
        else:
            unfilled.append(i)
    position = np.zeros(n)
    for f in fills:
        position[f.filled_at :] += f.side * f.quantity
    return _account(
        bars,
        _columns(fills),
        position,
        orders,
        reasons,
        capital=capital,
        multiplier=float(multiplier),
        path="reference",
        unfilled=unfilled,
    )


class PlainCrossover(Strategy):
    """A strategy as an operator would add one: ``warmup_bars`` and ``_decide``, nothing else (not registered)."""

    name = "test_plain_crossover"
    params = (ParamSpec("fast", int, 5, "fast"), ParamSpec("slow", int, 17, "slow"), ParamSpec("size", float, 1, "s"))

    def warmup_bars(self, params):
        return params["slow"]

    def _decide(self, params, bars, position):
        fast, slow = np.mean(bars.close[-params["fast"] :]), np.mean(bars.close[-params["slow"] :])
        if fast == slow:
            return Decision(position, "HOLD")
        return Decision(params["size"] if fast > slow else 0.0, "SIGNAL", {"spread": float(fast - slow)})


class OwnDecide(PlainCrossover):
    """Overrides ``decide`` (and looks at the whole window it gets): the engine must call it, not ``_decide``."""

    name = "test_own_decide"

    def decide(self, params, bars, position):
        if len(bars) < 3:
            return Decision(None, "INSUFFICIENT_HISTORY")
        return Decision(params["size"] if bars.close[-1] > bars.close[0] else -params["size"], "OWN")


MODELS = {
    "next_open": FillModel(),
    "close_with_costs": FillModel(fill_at="close", slippage_bps=1.3, fee_bps=0.7, fee_per_unit=Decimal("0.5")),
    "volume_cap": FillModel(max_volume_share=0.2, slippage_ticks=1),
    "volume_cap_fine_steps": FillModel(max_volume_share=0.3, min_quantity_step=Decimal("1E-18")),
}

STRATEGIES = [
    ("ma_crossover", {"fast": 4, "slow": 15, "size": 12.5, "allow_short": True}),
    ("donchian_breakout", {"entry_lookback": 12, "exit_lookback": 5, "size": 7.3, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 14, "entry_z": 1.2, "exit_z": 0.2, "size": 0.3, "allow_short": True}),
    ("plain", {"fast": 5, "slow": 17, "size": 0.1 + 0.2}),
    ("own_decide", {"fast": 5, "slow": 17, "size": 9.0}),
]


def _strategy(name):
    return {"plain": PlainCrossover(), "own_decide": OwnDecide()}.get(name) or get_strategy(name)


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("name,params", STRATEGIES)
def test_reference_path_equals_deciding_bar_by_bar(name, params, model_name):
    strategy = _strategy(name)
    clean = strategy.validate(params)
    bars = memory_bars(2500, seed=23)
    kwargs = dict(model=MODELS[model_name], tick_size=Decimal("0.25"), multiplier=Decimal("5"), capital=50_000.0)
    done = []
    fast = run_reference(strategy, clean, bars, progress=done.append, progress_every=700, **kwargs)
    slow = decide_bar_by_bar(strategy, clean, bars, **kwargs)
    assert done == [700, 1400, 2100]
    assert len(slow.fills) > 20
    assert fast.fills == slow.fills
    assert fast.orders == slow.orders
    assert fast.unfilled == slow.unfilled
    assert np.array_equal(fast.no_trade_by_bar, slow.no_trade_by_bar)
    assert fast.no_trade == slow.no_trade
    assert np.array_equal(fast.position, slow.position)
    assert np.array_equal(fast.equity, slow.equity)


def test_a_hold_on_a_position_with_more_digits_than_a_float_still_orders_the_decimal_remainder():
    """Fine volume-capped steps leave a decimal position no float spells; HOLD returns that float, and the order
    for the difference is what ``decide`` bar by bar sends. The fast path's float shortcut must not swallow it."""
    strategy = PlainCrossover()
    clean = strategy.validate({"size": 100.0})
    bars = memory_bars(600, seed=4)
    close = bars.close.copy()
    close[300:320] = close[299]  # a flat stretch: equal means, HOLD on the position
    bars = Bars.from_columns(**{c: getattr(bars, c) for c in BAR_COLUMNS if c != "close"}, close=close)
    kwargs = dict(
        model=FillModel(max_volume_share=0.37, min_quantity_step=Decimal("1E-18")),
        tick_size=Decimal("0.25"),
        multiplier=Decimal("1"),
        capital=1e6,
    )
    fast = run_reference(strategy, clean, bars, **kwargs)
    slow = decide_bar_by_bar(strategy, clean, bars, **kwargs)
    assert fast.fills == slow.fills and fast.orders == slow.orders
    assert any(f.quantity < 1e-9 for f in slow.fills), "the case needs a sub-float remainder order"


def test_a_window_reads_the_same_numbers_as_a_sliced_bars():
    bars = memory_bars(50, seed=2)
    window = SeriesWindows(bars).window(10, 40)
    sliced = Bars(*(getattr(bars, c)[10:40] for c in BAR_COLUMNS))
    assert len(window) == 30 and isinstance(window, Bars)
    for c in BAR_COLUMNS:
        assert np.array_equal(getattr(window, c), getattr(sliced, c))
    with pytest.raises(AttributeError):
        window.vwap  # noqa: B018 - not a column


def test_the_position_series_is_the_sum_of_the_fills_to_the_bit():
    """``_held`` (a running sum of one signed quantity per bar) equals adding each fill to every later bar, as the
    loop it replaced did, for quantities whose sums round; and two fills on one bar take that loop itself."""
    from backtests.engine import _held

    rng = np.random.default_rng(3)
    n = 5000
    bars_with_fills = np.sort(rng.choice(n, 700, replace=False))
    fills = [
        Fill(int(b) - 1, int(b), int(s), float(q), 100.0, 0.0, 0.0)
        for b, s, q in zip(bars_with_fills, rng.choice([-1, 1], 700), rng.random(700) * 3 + 0.1)
    ]
    doubled = [
        dataclasses.replace(f, quantity=f.quantity / 3) for f in fills
    ]  # a second fill on each bar, of another size
    for case in (fills, [f for pair in zip(fills, doubled) for f in pair]):
        want = np.zeros(n)
        for f in case:
            want[f.filled_at :] += f.side * f.quantity
        got = _held(_columns(case), n)
        assert np.array_equal(got, want)
        assert got.dtype == np.float64
    assert np.array_equal(_held(_columns([]), n), np.zeros(n))


@pytest.mark.parametrize("name,params", STRATEGIES)
@pytest.mark.parametrize("n", [1, 16, 17, 18])
def test_a_series_about_as_short_as_the_warmup_runs_as_deciding_bar_by_bar(name, params, n):
    strategy = _strategy(name)
    clean = strategy.validate(params)
    bars = memory_bars(n, seed=9)
    kwargs = dict(model=MODELS["next_open"], tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=1e4)
    fast = run_reference(strategy, clean, bars, **kwargs)
    slow = decide_bar_by_bar(strategy, clean, bars, **kwargs)
    assert len(fast.no_trade_by_bar) == n and np.array_equal(fast.no_trade_by_bar, slow.no_trade_by_bar)
    assert fast.no_trade == slow.no_trade and fast.orders == slow.orders and fast.fills == slow.fills
