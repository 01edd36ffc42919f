"""Backtest speed: a moving-average crossover (10/30, long or flat) on 1,000,000 one-minute bars.

Times, on the same bars and fill rule (decide on a bar's close, fill at the next bar's open, no costs):
  - our engine (backtests.engine: the vectorized path a backtest run takes for ma_crossover),
  - our bar-by-bar reference on the first 100,000 bars (the path every other strategy takes),
  - a plain numpy loop (cumulative-sum moving averages, positions, next-open fills, equity),
  - backtesting.py, when importable (bench only, never a runtime requirement), confirming identical trades.

Run (from the repository root; backtesting.py from a throwaway venv added to the path):
  .venv/bin/python bench/backtest_speed.py
  python -m venv /tmp/btpy && /tmp/btpy/bin/pip install -r bench/requirements-bench.txt
  BENCH_EXTRA_SITE=$(/tmp/btpy/bin/python -c 'import site;print(site.getsitepackages()[0])') .venv/bin/python bench/backtest_speed.py
"""

from __future__ import annotations

import os
import platform
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from backtests.engine import run_reference, run_vectorized  # noqa: E402
from bots.strategies import Bars, get_strategy  # noqa: E402
from execution.fills import FillModel  # noqa: E402

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
    target[SLOW - 1:] = np.where(last >= 0, sig[np.maximum(last, 0)], 0.0)
    position = np.concatenate(([0.0], target[:-1]))  # filled at the next bar's open
    change = np.diff(np.concatenate(([0.0], position)))
    cash = -np.cumsum(change * bars.open)
    equity = cash + position * c
    entries = np.flatnonzero(change > 0)
    exits = np.flatnonzero(change < 0)
    return equity, entries, exits


def timed(fn, repeat=3):
    best, value = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}; {N:,} bars, MA {FAST}/{SLOW}")
    bars = make_bars(N)
    strategy = get_strategy("ma_crossover")
    params = strategy.validate({"fast": FAST, "slow": SLOW})
    kwargs = dict(model=FillModel(), tick_size=Decimal(str(TICK)), multiplier=Decimal("1"), capital=1_000_000.0)

    ours_s, ours = timed(lambda: run_vectorized(strategy, params, bars, **kwargs))
    print(f"our engine (vectorized): {ours_s:.3f} s = {N / ours_s:,.0f} bars/s, {len(ours.fills):,} fills")

    sub = Bars(*(getattr(bars, c)[:100_000] for c in ("ts", "open", "high", "low", "close", "volume")))
    ref_s, ref = timed(lambda: run_reference(strategy, params, sub, **kwargs), repeat=1)
    vec_sub = run_vectorized(strategy, params, sub, **kwargs)
    same = [(f.filled_at, f.side, f.price) for f in ref.fills] == [(f.filled_at, f.side, f.price) for f in vec_sub.fills]
    print(f"our bar-by-bar reference (100,000 bars): {ref_s:.3f} s = {len(sub) / ref_s:,.0f} bars/s; "
          f"fills identical to vectorized: {same}")

    loop_s, (equity, entries, exits) = timed(lambda: numpy_loop(bars))
    ours_entries = [f.filled_at for f in ours.fills if f.side > 0]
    print(f"plain numpy loop: {loop_s:.3f} s = {N / loop_s:,.0f} bars/s; our speed / numpy = "
          f"{loop_s / ours_s:.2f}; same entries: {list(entries) == ours_entries}, "
          f"final equity diff {abs(equity[-1] - (ours.equity[-1] - 1_000_000.0)):.6f}")

    extra = os.environ.get("BENCH_EXTRA_SITE")
    if extra:
        sys.path.append(extra)
    try:
        import pandas as pd
        from backtesting import Backtest, Strategy
    except ImportError as exc:
        print(f"backtesting.py: not importable ({exc}); see the docstring to install it in a throwaway venv")
        return

    fast_ma = np.full(N, np.nan)
    slow_ma = np.full(N, np.nan)
    s = np.concatenate(([0.0], np.cumsum(bars.close)))
    i = np.arange(SLOW - 1, N)
    fast_ma[i] = (s[i + 1] - s[i + 1 - FAST]) / FAST
    slow_ma[i] = (s[i + 1] - s[i + 1 - SLOW]) / SLOW

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(lambda: fast_ma)
            self.slow = self.I(lambda: slow_ma)

        def next(self):
            if self.fast[-1] > self.slow[-1] and not self.position:
                self.buy(size=1)
            elif self.fast[-1] < self.slow[-1] and self.position:
                self.position.close()

    frame = pd.DataFrame({"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close,
                          "Volume": bars.volume}, index=pd.DatetimeIndex(bars.ts))
    bt = Backtest(frame, Cross, cash=1e9, commission=0, trade_on_close=False, exclusive_orders=False)
    t = time.perf_counter()
    stats = bt.run()
    bt_s = time.perf_counter() - t
    theirs = stats["_trades"]
    mine = [t for t in ours.trades if t["exit_bar"] is not None]
    pairs = list(zip(theirs["EntryBar"], theirs["ExitBar"], theirs["EntryPrice"], theirs["ExitPrice"]))
    ours_pairs = [(t["entry_bar"], t["exit_bar"], t["entry_price"], t["exit_price"]) for t in mine]
    common = min(len(pairs), len(ours_pairs))
    identical = sum(1 for a, b in zip(pairs[:common], ours_pairs[:common]) if tuple(map(float, a)) == tuple(b))
    for a, b in zip(pairs[:common], ours_pairs[:common]):
        if tuple(map(float, a)) != tuple(b):
            print(f"  first differing trade: backtesting.py {tuple(map(float, a))}, ours {b}")
            break
    print(f"backtesting.py: {bt_s:.3f} s = {N / bt_s:,.0f} bars/s; our engine is {bt_s / ours_s:,.0f}x faster; "
          f"closed trades: theirs {len(pairs):,}, ours {len(ours_pairs):,}, identical {identical:,}")


if __name__ == "__main__":
    main()
