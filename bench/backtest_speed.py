"""Backtest speed: every shipped strategy on the same 1,000,000 one-minute bars, ours against backtesting.py.

For each strategy (long or flat, its default; decided after bar i closes, market orders filled at bar i+1's open,
no costs):
  - ma_crossover 10/30: long while the 10-bar mean of closes is above the 30-bar mean, flat below, hold on a tie;
  - donchian_breakout 20/10: long when the close breaks above the highest high of the previous 20 bars, flat when it
    breaks below their lowest low or, while long, below the lowest low of the previous 10;
  - zscore_mean_reversion 20 / 2.0 / 0.5: long when the close is 2 standard deviations (np.std of the 20 closes)
    below their mean, flat when 2 above or, while long, once back within 0.5 below;
it times:
  - our engine's vectorized path (the path a backtest run and a matrix take: ``backtests.engine.run_vectorized``),
  - our bar-by-bar reference on the first 100,000 bars (``run_reference``, the path under volume caps), and checks
    its fills equal the vectorized path's on those bars,
  - for ma_crossover, a plain numpy loop (cumulative-sum moving averages, positions, next-open fills, equity),
  - backtesting.py (bench only, never a runtime requirement) with the same rule, whose trades are compared with ours
    fill for fill,
  - vectorbt (bench only) where the rule is a pair of entry/exit signals (all three are, long or flat), also
    compared trade for trade.

The rules' indicators for backtesting.py and vectorbt are computed here, outside their timing, independently of our
engine: means by cumulative sums, channels by pandas rolling max/min, z-scores by np.mean/np.std of each window (the
definition ``_decide`` uses, so a z-score on a threshold compares the same way).

Prints bars/s for each, the ratios the issue targets (vectorized >= 50x backtesting.py, reference >= 1x), the trade
counts on each side and the verdict per library: "identical trades: N of N", or the first differing fill on each
side (bar, BUY/SELL, price); then a summary table. Exit status: 0 every comparison identical, 1 some trades differ,
2 backtesting.py not importable (nothing confirmed). BENCH_BARS changes the number of bars, BENCH_REF_BARS the
reference's, BENCH_STRATEGIES (comma-separated names) the strategies.

Run (from the repository root; backtesting.py and vectorbt from throwaway venvs appended to the path):
  python3 -m venv /tmp/btpy && /tmp/btpy/bin/pip install -r bench/requirements-bench.txt
  python3 -m venv /tmp/vbt && /tmp/vbt/bin/pip install -r bench/requirements-vectorbt.txt    # optional
  site() { "$1" -c 'import site;print(site.getsitepackages()[0])'; }
  BENCH_EXTRA_SITE=$(site /tmp/btpy/bin/python):$(site /tmp/vbt/bin/python) .venv/bin/python bench/backtest_speed.py
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

from backtests.engine import FILL_COLUMNS, run_reference, run_vectorized  # noqa: E402
from bots.strategies import Bars, get_strategy  # noqa: E402
from execution.fill_model import FillModel  # noqa: E402

N = int(os.environ.get("BENCH_BARS", 1_000_000))
REF_BARS = int(os.environ.get("BENCH_REF_BARS", 100_000))
TICK = 0.25
COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PARAMS = {
    "ma_crossover": {"fast": 10, "slow": 30},
    "donchian_breakout": {"entry_lookback": 20, "exit_lookback": 10},
    "zscore_mean_reversion": {"lookback": 20, "entry_z": 2.0, "exit_z": 0.5},
}
FAST, SLOW = PARAMS["ma_crossover"]["fast"], PARAMS["ma_crossover"]["slow"]


def make_bars(n: int) -> Bars:
    rng = np.random.default_rng(42)
    close = 4000 + np.cumsum(np.round(rng.normal(0, 1.0, n) / TICK) * TICK)
    open_ = np.concatenate(([4000.0], close[:-1])) + np.round(rng.normal(0, 0.5, n) / TICK) * TICK
    high = np.maximum(open_, close) + TICK
    low = np.minimum(open_, close) - TICK
    ts = np.datetime64("2020-01-01T00:00") + np.arange(n).astype("timedelta64[m]")
    return Bars.from_columns(ts=ts, open=open_, high=high, low=low, close=close, volume=np.full(n, 100.0))


def add_extra_site() -> None:
    """Append BENCH_EXTRA_SITE to the import path: one site-packages directory, or several joined by ':' (the
    backtesting.py and vectorbt venvs), as every bench here reads it."""
    for extra in filter(None, os.environ.get("BENCH_EXTRA_SITE", "").split(os.pathsep)):
        if extra not in sys.path:
            sys.path.append(extra)


def numpy_loop(bars: Bars):
    """The plain numpy version of the MA crossover: SMAs by cumsum, long while fast > slow (hold on a tie),
    next-open fills."""
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
    """Best wall seconds, best CPU seconds of this process (on a shared machine the wall time includes waiting for
    a core; the CPU time does not), and the last value."""
    best, best_cpu, value = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        value = fn()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu, value


def signals(name: str, bars: Bars) -> tuple[np.ndarray, np.ndarray]:
    """Per bar, the long/flat rule as two signals: enter long (when flat) and go flat (when long). NaN indicators
    (before the warm-up, or a window without dispersion) compare False: no signal, hold."""
    import pandas as pd

    close = bars.close
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "ma_crossover":
            s = np.concatenate(([0.0], np.cumsum(close)))
            i = np.arange(SLOW - 1, len(bars))
            fast_ma = np.full(len(bars), np.nan)
            slow_ma = np.full(len(bars), np.nan)
            fast_ma[i] = (s[i + 1] - s[i + 1 - FAST]) / FAST
            slow_ma[i] = (s[i + 1] - s[i + 1 - SLOW]) / SLOW
            return fast_ma > slow_ma, fast_ma < slow_ma
        if name == "donchian_breakout":
            entry, exit_ = PARAMS[name]["entry_lookback"], PARAMS[name]["exit_lookback"]
            high, low = pd.Series(bars.high), pd.Series(bars.low)
            entry_high = high.rolling(entry).max().shift(1).to_numpy()
            entry_low = low.rolling(entry).min().shift(1).to_numpy()
            exit_low = low.rolling(exit_).min().shift(1).to_numpy()
            up = close > entry_high
            return up, ~up & ((close < entry_low) | (close < exit_low))
        lookback, entry_z, exit_z = (PARAMS[name][k] for k in ("lookback", "entry_z", "exit_z"))
        z = np.full(len(bars), np.nan)
        windows = np.lib.stride_tricks.sliding_window_view(close, lookback)
        for lo in range(0, len(windows), 50_000):
            rows = np.array(windows[lo : lo + 50_000])  # C-contiguous rows reduce as np.mean/np.std of a slice
            std = np.std(rows, axis=1)
            z[lookback - 1 + lo : lookback - 1 + lo + len(rows)] = np.where(
                std != 0.0, (rows[:, -1] - np.mean(rows, axis=1)) / std, np.nan
            )
        return z <= -entry_z, (z >= entry_z) | (z >= -exit_z)


def run_backtesting_py(bars: Bars, enter: np.ndarray, leave: np.ndarray) -> tuple[float, float, list[Trade]]:
    """The rule in backtesting.py: after bar i closes, buy one unit on an entry signal when flat, close on an exit
    signal when long; market orders fill at bar i+1's open. Returns the run's seconds and its trades, closed and
    still open.

    The signals are read by bar index from plain arrays, not declared with ``Strategy.I()``: backtesting.py starts
    calling ``next()`` one bar AFTER the first bar where every ``I()`` indicator is defined (``Backtest.run``:
    ``start = 1 + _indicator_warmup_nbars(strategy)``, "+1 to have at least two entries available" for
    ``crossover()``-style rules that read ``[-2]``). With I() the first decision would come a bar later than the
    live tick's (our ``warmup_bars``: the first bar whose window is full). Without indicators backtesting.py calls
    ``next()`` from bar 1 and the undefined signals of the warm-up are False, so both sides make their first
    decision on the same bar.
    """
    import pandas as pd
    from backtesting import Backtest, Strategy

    class LongOrFlat(Strategy):
        def init(self):
            pass

        def next(self):
            bar = len(self.data) - 1
            if enter[bar]:
                if not self.position:
                    self.buy(size=1)
            elif leave[bar] and self.position:
                self.position.close()

    frame = pd.DataFrame(
        {"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close, "Volume": bars.volume},
        index=pd.DatetimeIndex(bars.ts),
    )
    bt = Backtest(frame, LongOrFlat, cash=1e9, commission=0, trade_on_close=False, exclusive_orders=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some trades remain open")  # compared below as open trades
        seconds, cpu, stats = timed(bt.run, repeat=1)
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
    return seconds, cpu, trades


def run_vectorbt(bars: Bars, enter: np.ndarray, leave: np.ndarray) -> tuple[float, float, list[Trade]]:
    """The rule in vectorbt: ``Portfolio.from_signals`` with the signals moved one bar later and the open as the
    price (a decision on bar i fills at bar i+1's open), one unit, no costs. The best of three runs after a
    warm-up run (its numba functions compile on first use)."""
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(bars.ts)
    close = pd.Series(bars.close, index=index)
    price = pd.Series(bars.open, index=index)
    entries = pd.Series(np.concatenate(([False], enter[:-1])), index=index)
    exits = pd.Series(np.concatenate(([False], leave[:-1])), index=index)

    def run():
        return vbt.Portfolio.from_signals(
            close, entries, exits, price=price, size=1.0, init_cash=1e9, fees=0.0, freq="1min"
        )

    run()
    seconds, cpu, portfolio = timed(run, repeat=3)
    records = portfolio.trades.values  # a structured array: entry_idx, exit_idx, entry_price, exit_price, status
    trades = [
        (
            int(r["entry_idx"]),
            1,
            float(r["entry_price"]),
            None if r["status"] == 0 else int(r["exit_idx"]),
            None if r["status"] == 0 else float(r["exit_price"]),
        )
        for r in records
    ]
    return seconds, cpu, trades


def bench_strategy(name: str, bars: Bars, libraries: dict) -> dict:
    strategy = get_strategy(name)
    params = strategy.validate(PARAMS[name])
    kwargs = dict(model=FillModel(), tick_size=Decimal(str(TICK)), multiplier=Decimal("1"), capital=1_000_000.0)
    print(f"\n== {name} {params}")
    row = {"strategy": name}

    ours_s, ours_cpu, ours = float("inf"), float("inf"), None
    for _ in range(3):
        # Fresh copies (outside the timing): the rolling spans a strategy keeps between calls on the same arrays
        # (what a matrix chunk's sets share) must not make a single run look faster than it is cold.
        copies = Bars(*(getattr(bars, c).copy() for c in COLUMNS))
        seconds, cpu, ours = timed(lambda: run_vectorized(strategy, params, copies, **kwargs), repeat=1)
        ours_s, ours_cpu = min(ours_s, seconds), min(ours_cpu, cpu)
    row["vectorized"], row["vectorized_cpu"] = N / ours_s, N / ours_cpu
    print(
        f"our engine (vectorized): {ours_s:.3f} s = {N / ours_s:,.0f} bars/s (CPU {ours_cpu:.3f} s), "
        f"{len(ours.fills):,} fills"
    )

    sub = Bars(*(getattr(bars, c)[:REF_BARS] for c in COLUMNS))
    ref_s, ref_cpu, ref = timed(lambda: run_reference(strategy, params, sub, **kwargs), repeat=1)
    vec_sub = run_vectorized(strategy, params, sub, **kwargs)
    same = all(np.array_equal(ref.fill_columns[c], vec_sub.fill_columns[c]) for c in FILL_COLUMNS[:5])
    row["reference"], row["reference_cpu"] = len(sub) / ref_s, len(sub) / ref_cpu
    row["reference_same"] = same
    print(
        f"our bar-by-bar reference ({len(sub):,} bars): {ref_s:.3f} s = {len(sub) / ref_s:,.0f} bars/s "
        f"(CPU {ref_cpu:.3f} s); "
        f"{len(ref.fills):,} fills, identical to the vectorized path's on those bars: {same}"
    )

    if name == "ma_crossover":
        loop_s, _, (equity, entries, _) = timed(lambda: numpy_loop(bars))
        ours_entries = [f.filled_at for f in ours.fills if f.side > 0]
        print(
            f"plain numpy loop: {loop_s:.3f} s = {N / loop_s:,.0f} bars/s; our speed / numpy = "
            f"{loop_s / ours_s:.2f}; same entries: {list(entries) == ours_entries}, "
            f"final equity diff {abs(equity[-1] - (ours.equity[-1] - 1_000_000.0)):.6f}"
        )

    ours_trades = [(t["entry_bar"], t["side"], t["entry_price"], t["exit_bar"], t["exit_price"]) for t in ours.trades]
    enter, leave = signals(name, bars)
    for library, runner in libraries.items():
        seconds, cpu, theirs = runner(bars, enter, leave)
        identical, lines = compare_trades(ours_trades, theirs, library)
        row[library] = (N / seconds, identical, len(theirs), N / cpu)
        print(
            f"{library}: {seconds:.3f} s = {N / seconds:,.0f} bars/s (CPU {cpu:.3f} s); our vectorized path is "
            f"{seconds / ours_s:,.1f}x (CPU time: {cpu / ours_cpu:,.1f}x)"
        )
        for line in lines:
            print(line)
    if "backtesting.py" in row:
        bt_rate = row["backtesting.py"][0]
        vec_ratio, ref_ratio = row["vectorized"] / bt_rate, row["reference"] / bt_rate
        cpu_ratio = row["vectorized_cpu"] / row["backtesting.py"][3]
        ref_cpu_ratio = row["reference_cpu"] / row["backtesting.py"][3]
        print(
            f"ratios: vectorized / backtesting.py = {vec_ratio:,.0f}x wall, {cpu_ratio:,.0f}x CPU (target >= 50x: "
            f"{'met' if vec_ratio >= 50 else 'NOT met'}); reference / backtesting.py = {ref_ratio:.2f}x wall, "
            f"{ref_cpu_ratio:.2f}x CPU (target >= 1x: {'met' if ref_ratio >= 1 else 'NOT met'})"
        )
    row["trades"] = len(ours_trades)
    return row


def main() -> None:
    names = [n for n in os.environ.get("BENCH_STRATEGIES", ",".join(PARAMS)).split(",") if n]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}, Python {platform.python_version()}, numpy {np.__version__}; {N:,} bars"
    )
    add_extra_site()
    libraries = {}
    try:
        import backtesting

        libraries["backtesting.py"] = run_backtesting_py
        print(f"backtesting.py {backtesting.__version__}")
    except ImportError as exc:
        print(f"backtesting.py: not importable ({exc}); see the docstring to install it in a throwaway venv")
    try:
        import vectorbt

        libraries["vectorbt"] = run_vectorbt
        print(f"vectorbt {vectorbt.__version__}")
    except ImportError as exc:
        print(f"vectorbt: not importable ({exc}); not compared")
    bars = make_bars(N)
    rows = [bench_strategy(name, bars, libraries) for name in names]

    print(
        "\nstrategy | vectorized bars/s | reference bars/s | backtesting.py bars/s | vec/bt | ref/bt | trades | "
        "vectorbt bars/s"
    )
    for r in rows:
        bt = r.get("backtesting.py")
        vbt = r.get("vectorbt")
        cells = [
            r["strategy"],
            f"{r['vectorized']:,.0f}",
            f"{r['reference']:,.0f}",
            f"{bt[0]:,.0f}" if bt else "n/a",
            f"{r['vectorized'] / bt[0]:,.0f}x ({r['vectorized_cpu'] / bt[3]:,.0f}x CPU)" if bt else "n/a",
            f"{r['reference'] / bt[0]:.2f}x ({r['reference_cpu'] / bt[3]:.2f}x CPU)" if bt else "n/a",
            (f"{r['trades']:,} of {bt[2]:,} {'identical' if bt[1] else 'DIFFER'}" if bt else f"{r['trades']:,} ours"),
            (f"{vbt[0]:,.0f} ({'identical' if vbt[1] else 'DIFFER'})" if vbt else "n/a"),
        ]
        print(" | ".join(cells))
    if "backtesting.py" not in libraries:
        print("trades NOT confirmed against backtesting.py")
        sys.exit(2)
    if not all(r["reference_same"] and all(r[lib][1] for lib in libraries) for r in rows):
        sys.exit(1)


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


def compare_trades(ours: list[Trade], theirs: list[Trade], library: str = "backtesting.py") -> tuple[bool, list[str]]:
    """The verdict: counts on each side, then "identical trades: N of N" or the first differing fill."""

    def counts(trades):
        closed = sum(1 for t in trades if t[3] is not None)
        return f"{closed:,} closed + {len(trades) - closed:,} open at the end"

    lines = [f"trades: ours {counts(ours)}, {library} {counts(theirs)}"]
    mine, other = _fills(ours), _fills(theirs)
    for k in range(max(len(mine), len(other))):
        a = mine[k] if k < len(mine) else None
        b = other[k] if k < len(other) else None
        if a is None or b is None or a[2] != b[2]:
            lines.append(f"trades DIFFER; first difference: ours {_describe(a)}; {library} {_describe(b)}")
            return False, lines
    lines.append(f"identical trades: {len(ours):,} of {len(theirs):,}")
    return True, lines


if __name__ == "__main__":
    main()
