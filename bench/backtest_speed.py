"""Backtest speed: a moving-average crossover (10/30, long or flat) on 1,000,000 one-minute bars.

Times, on the same bars and rule (after bar i closes: long while the 10-bar mean of closes is above the 30-bar mean,
flat while below, hold on a tie; the first decision on bar 29, the first with 30 closes; market orders fill at bar
i+1's open; no costs):
  - our engine (backtests.engine: the vectorized path a backtest run takes for ma_crossover),
  - our bar-by-bar reference on the first 100,000 bars (the path every other strategy takes),
  - a plain numpy loop (cumulative-sum moving averages, positions, next-open fills, equity),
  - backtesting.py (bench only, never a runtime requirement), whose trades are compared with ours fill for fill.

Prints bars/s for each, the ratios the issue targets (our engine >= 50x backtesting.py, >= 0.5 of the numpy loop),
the trade counts on each side and the verdict: "identical trades: N of N", or the first differing fill on each side
(bar, BUY/SELL, price). Exit status: 0 identical, 1 the trades differ, 2 backtesting.py not importable (nothing
confirmed). BENCH_BARS changes the number of bars.

Run (from the repository root; backtesting.py from a throwaway venv appended to the path):
  python3 -m venv /tmp/btpy && /tmp/btpy/bin/pip install -r bench/requirements-bench.txt
  BENCH_EXTRA_SITE=$(/tmp/btpy/bin/python -c 'import site;print(site.getsitepackages()[0])') .venv/bin/python bench/backtest_speed.py
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from backtests.engine import run_reference, run_vectorized  # noqa: E402
from bots.strategies import Bars, get_strategy  # noqa: E402
from execution.fill_model import FillModel  # noqa: E402

N = int(os.environ.get("BENCH_BARS", 1_000_000))
FAST, SLOW = 10, 30
TICK = 0.25


def make_bars(n: int) -> Bars:
    rng = np.random.default_rng(42)
    close = 4000 + np.cumsum(np.round(rng.normal(0, 1.0, n) / TICK) * TICK)
    open_ = np.concatenate(([4000.0], close[:-1])) + np.round(rng.normal(0, 0.5, n) / TICK) * TICK
    high = np.maximum(open_, close) + TICK
    low = np.minimum(open_, close) - TICK
    ts = np.datetime64("2020-01-01T00:00") + np.arange(n).astype("timedelta64[m]")
    return Bars.from_columns(ts=ts, open=open_, high=high, low=low, close=close, volume=np.full(n, 100.0))


def numpy_loop(bars: Bars):
    """The plain numpy version: SMAs by cumsum, long while fast > slow (hold on a tie), next-open fills."""
    c = bars.close
    s = np.concatenate(([0.0], np.cumsum(c)))
    i = np.arange(SLOW - 1, len(c))
    fast = (s[i + 1] - s[i + 1 - FAST]) / FAST
    slow = (s[i + 1] - s[i + 1 - SLOW]) / SLOW
    sig = np.where(fast > slow, 1.0, np.where(fast < slow, 0.0, np.nan))
    valid = ~np.isnan(sig)
    last = np.maximum.accumulate(np.where(valid, np.arange(len(sig)), -1))
    target = np.zeros(len(c))
    target[SLOW - 1 :] = np.where(last >= 0, sig[np.maximum(last, 0)], 0.0)
    position = np.concatenate(([0.0], target[:-1]))  # filled at the next bar's open
    change = np.diff(np.concatenate(([0.0], position)))
    cash = -np.cumsum(change * bars.open)
    equity = cash + position * c
    entries = np.flatnonzero(change > 0)
    exits = np.flatnonzero(change < 0)
    return equity, entries, exits


def timed(fn, repeat=5):
    best, value = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}; {N:,} bars, MA {FAST}/{SLOW}"
    )
    bars = make_bars(N)
    strategy = get_strategy("ma_crossover")
    params = strategy.validate({"fast": FAST, "slow": SLOW})
    kwargs = dict(model=FillModel(), tick_size=Decimal(str(TICK)), multiplier=Decimal("1"), capital=1_000_000.0)

    ours_s, ours = timed(lambda: run_vectorized(strategy, params, bars, **kwargs))
    print(f"our engine (vectorized): {ours_s:.3f} s = {N / ours_s:,.0f} bars/s, {len(ours.fills):,} fills")

    sub = Bars(*(getattr(bars, c)[:100_000] for c in ("ts", "open", "high", "low", "close", "volume")))
    ref_s, ref = timed(lambda: run_reference(strategy, params, sub, **kwargs), repeat=1)
    vec_sub = run_vectorized(strategy, params, sub, **kwargs)
    same = [(f.filled_at, f.side, f.price) for f in ref.fills] == [
        (f.filled_at, f.side, f.price) for f in vec_sub.fills
    ]
    print(
        f"our bar-by-bar reference (100,000 bars): {ref_s:.3f} s = {len(sub) / ref_s:,.0f} bars/s; "
        f"fills identical to vectorized: {same}"
    )

    loop_s, (equity, entries, exits) = timed(lambda: numpy_loop(bars))
    ours_entries = [f.filled_at for f in ours.fills if f.side > 0]
    print(
        f"plain numpy loop: {loop_s:.3f} s = {N / loop_s:,.0f} bars/s; our speed / numpy = "
        f"{loop_s / ours_s:.2f}; same entries: {list(entries) == ours_entries}, "
        f"final equity diff {abs(equity[-1] - (ours.equity[-1] - 1_000_000.0)):.6f}"
    )

    extra = os.environ.get("BENCH_EXTRA_SITE")
    if extra:
        sys.path.append(extra)
    try:
        import backtesting  # noqa: F401
    except ImportError as exc:
        print(f"backtesting.py: not importable ({exc}); see the docstring to install it in a throwaway venv")
        print("trades NOT confirmed against backtesting.py")
        sys.exit(2)

    bt_s, theirs = run_backtesting_py(bars)
    print(f"backtesting.py: {bt_s:.3f} s = {N / bt_s:,.0f} bars/s")
    ours_trades = [(t["entry_bar"], t["side"], t["entry_price"], t["exit_bar"], t["exit_price"]) for t in ours.trades]
    print(
        f"ratios: our engine / backtesting.py = {bt_s / ours_s:,.0f}x (target >= 50x: "
        f"{'met' if bt_s / ours_s >= 50 else 'NOT met'}); our engine / numpy loop = {loop_s / ours_s:.2f} "
        f"(aim >= 0.5: {'met' if loop_s / ours_s >= 0.5 else 'NOT met'})"
    )
    identical, lines = compare_trades(ours_trades, theirs)
    for line in lines:
        print(line)
    if not identical:
        sys.exit(1)


def run_backtesting_py(bars: Bars) -> tuple[float, list[Trade]]:
    """The same rule in backtesting.py: after bar i closes, long while fast > slow, flat while fast < slow, hold on a
    tie; market orders fill at bar i+1's open. Returns the run's seconds and its trades, closed and still open.

    The moving averages are read by bar index from plain arrays, not declared with ``Strategy.I()``: backtesting.py
    starts calling ``next()`` one bar AFTER the first bar where every ``I()`` indicator is defined
    (``Backtest.run``: ``start = 1 + _indicator_warmup_nbars(strategy)``, "+1 to have at least two entries
    available" for ``crossover()``-style rules that read ``[-2]``). With I() the first decision would be at bar
    ``SLOW`` (the 31st bar) and the first fill at bar ``SLOW + 1``, while our strategy (``warmup_bars`` = slow)
    decides on the bar where the slow window first fills, bar ``SLOW - 1``, as the live tick does. Without
    indicators backtesting.py calls ``next()`` from bar 1 and the NaN means of the first ``SLOW - 1`` bars compare
    False, so both sides make their first decision on the same bar.
    """
    import pandas as pd
    from backtesting import Backtest, Strategy

    s = np.concatenate(([0.0], np.cumsum(bars.close)))
    i = np.arange(SLOW - 1, len(bars))
    fast_ma = np.full(len(bars), np.nan)
    slow_ma = np.full(len(bars), np.nan)
    fast_ma[i] = (s[i + 1] - s[i + 1 - FAST]) / FAST
    slow_ma[i] = (s[i + 1] - s[i + 1 - SLOW]) / SLOW

    class LongWhileFastAbove(Strategy):
        def init(self):
            pass

        def next(self):
            bar = len(self.data) - 1
            if fast_ma[bar] > slow_ma[bar] and not self.position:
                self.buy(size=1)
            elif fast_ma[bar] < slow_ma[bar] and self.position:
                self.position.close()

    frame = pd.DataFrame(
        {"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close, "Volume": bars.volume},
        index=pd.DatetimeIndex(bars.ts),
    )
    bt = Backtest(frame, LongWhileFastAbove, cash=1e9, commission=0, trade_on_close=False, exclusive_orders=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some trades remain open")  # compared below as open trades
        t = time.perf_counter()
        stats = bt.run()
        seconds = time.perf_counter() - t
    strategy = stats["_strategy"]
    trades = [
        (
            int(t.entry_bar),
            1 if t.size > 0 else -1,
            float(t.entry_price),
            None if t.exit_bar is None else int(t.exit_bar),
            None if t.exit_price is None else float(t.exit_price),
        )
        for t in (*strategy.closed_trades, *strategy.trades)
    ]
    return seconds, trades


# A trade: entry bar, side (+1 long, -1 short), entry price, exit bar and exit price (None while still open).
Trade = tuple[int, int, float, int | None, float | None]


def _fills(trades: list[Trade]) -> list[tuple[int, int, tuple[int, str, float]]]:
    """Each trade as its fills: (trade number, fill number within the trade, (bar, BUY/SELL, price))."""
    fills = []
    for number, (entry_bar, side, entry_price, exit_bar, exit_price) in enumerate(trades, 1):
        fills.append((number, 1, (entry_bar, "BUY" if side > 0 else "SELL", entry_price)))
        if exit_bar is not None:
            fills.append((number, 2, (exit_bar, "SELL" if side > 0 else "BUY", exit_price)))
    return fills


def _describe(fill) -> str:
    if fill is None:
        return "no such fill"
    number, which, (bar, side, price) = fill
    return f"trade #{number:,} {'entry' if which == 1 else 'exit'}: bar {bar:,} {side} @ {price:.2f}"


def compare_trades(ours: list[Trade], theirs: list[Trade]) -> tuple[bool, list[str]]:
    """The verdict: counts on each side, then "identical trades: N of N" or the first differing fill."""

    def counts(trades):
        closed = sum(1 for t in trades if t[3] is not None)
        return f"{closed:,} closed + {len(trades) - closed:,} open at the end"

    lines = [f"trades: ours {counts(ours)}, backtesting.py {counts(theirs)}"]
    mine, other = _fills(ours), _fills(theirs)
    for k in range(max(len(mine), len(other))):
        a = mine[k] if k < len(mine) else None
        b = other[k] if k < len(other) else None
        if a is None or b is None or a[2] != b[2]:
            lines.append(f"trades DIFFER; first difference: ours {_describe(a)}; backtesting.py {_describe(b)}")
            return False, lines
    lines.append(f"identical trades: {len(ours):,} of {len(theirs):,}")
    return True, lines


if __name__ == "__main__":
    main()
