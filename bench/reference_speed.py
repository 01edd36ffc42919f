"""Reference-path speed: the bar-by-bar backtest every strategy without a vectorized form takes, against
backtesting.py, on the same 1,000,000 one-minute bars.

Times ``backtests.engine.run_reference`` (after each bar closes, ``_decide`` on the last ``warmup_bars`` bars and
the current position; market orders at the next bar's open; no costs) for each shipped strategy with its default
parameters (``ma_crossover`` at 10/30), and for a plain new strategy defined only by ``warmup_bars`` and
``_decide``, as an operator would write it (long while the 10-bar ``np.mean`` of closes is above the 30-bar one,
flat below, hold on a tie). Then backtesting.py on the same bars and rule (``backtest_speed.run_backtesting_py``:
means read by index, next-open fills), and each of our figures as a ratio of backtesting.py's bars/s (target for
the plain strategy: >= 1). The plain strategy's trades are compared with backtesting.py's fill for fill (its exact
window means can call a near-tie differently from backtesting.py's cumulative-sum means; the first difference, if
any, is printed). Every timing is the best of BENCH_REPEAT rounds (default 3), each round running ours and then
backtesting.py once, in wall time (the figure) and in this process's CPU time (on a shared machine the two sides
of a wall ratio can meet different loads; the CPU ratio shows how much of it that was).
Exit status: 0, or 2 when backtesting.py is not importable (nothing compared). BENCH_BARS changes the number of
bars.

Run (from the repository root; backtesting.py from a throwaway venv appended to the path, see bench/README.md):
  python3 -m venv /tmp/btpy && /tmp/btpy/bin/pip install -r bench/requirements-bench.txt
  BENCH_EXTRA_SITE=$(/tmp/btpy/bin/python -c 'import site;print(site.getsitepackages()[0])') .venv/bin/python bench/reference_speed.py
"""

from __future__ import annotations

import os
import platform
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from backtest_speed import (  # noqa: E402
    add_extra_site,
    compare_trades,
    make_bars,
    run_backtesting_py,
    signals,
    timed,
)
from backtests.engine import run_reference  # noqa: E402
from bots.strategies import Decision, ParamSpec, Strategy, bar_strategies  # noqa: E402
from execution.fill_model import FillModel  # noqa: E402

N = int(os.environ.get("BENCH_BARS", 1_000_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 3))  # best of: the machine is shared, a slow run is someone else's
TICK = 0.25


class PlainMovingAverageCrossover(Strategy):
    """A new strategy as an operator adds one: a schema, ``warmup_bars`` and ``_decide``; no vectorized form, no
    batch form, no indicator helpers (not registered: it exists for this bench only)."""

    name = "bench_plain_ma_crossover"
    params = (ParamSpec("fast", int, 10, "Fast window."), ParamSpec("slow", int, 30, "Slow window."))

    def warmup_bars(self, params):
        return params["slow"]

    def _decide(self, params, bars, position):
        fast = np.mean(bars.close[-params["fast"] :])
        slow = np.mean(bars.close[-params["slow"] :])
        if fast > slow:
            return Decision(1.0, "LONG")
        if fast < slow:
            return Decision(0.0, "FLAT")
        return Decision(position, "HOLD")


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}; "
        f"{N:,} bars, reference path, next-open fills, no costs"
    )
    bars = make_bars(N)
    kwargs = dict(model=FillModel(), tick_size=Decimal(str(TICK)), multiplier=Decimal("1"), capital=1_000_000.0)
    runs = [(s.name, s, s.validate({})) for s in bar_strategies()]
    plain = PlainMovingAverageCrossover()
    runs.append(("plain new strategy (_decide only, MA 10/30)", plain, plain.validate({})))
    add_extra_site()
    try:
        import backtesting  # noqa: F401

        enter, leave = signals("ma_crossover", bars)
    except ImportError as exc:
        print(f"backtesting.py: not importable ({exc}); see the docstring to install it in a throwaway venv")
        enter = leave = None
    # Rounds, each timing every one of ours once and then backtesting.py once, best of REPEAT rounds per side: on a
    # shared machine both sides of a ratio then sample the same stretch of load (all of ours first, then all of
    # backtesting.py's runs, put minutes between the two sides of a ratio).
    ours: dict[str, tuple[float, float, object]] = {}
    bt_s = bt_cpu = float("inf")
    theirs = None
    for _ in range(REPEAT):
        for label, strategy, params in runs:
            seconds, cpu, result = timed(lambda: run_reference(strategy, params, bars, **kwargs), repeat=1)
            best_s, best_cpu, _ = ours.get(label, (float("inf"), float("inf"), None))
            ours[label] = (min(best_s, seconds), min(best_cpu, cpu), result)
        if enter is not None:
            seconds, cpu, theirs = run_backtesting_py(bars, enter, leave)
            bt_s, bt_cpu = min(bt_s, seconds), min(bt_cpu, cpu)
    for label, (seconds, cpu, result) in ours.items():
        print(
            f"reference {label}: {seconds:.2f} s = {N / seconds:,.0f} bars/s (CPU {cpu:.2f} s), "
            f"{len(result.fills):,} fills"
        )
    if enter is None:
        sys.exit(2)
    bt_rate = N / bt_s
    print(f"backtesting.py (MA 10/30, same bars): {bt_s:.2f} s = {bt_rate:,.0f} bars/s (CPU {bt_cpu:.2f} s)")
    # Wall time is the figure; the CPU-time ratio (each side's best process CPU seconds) says how much of a wall
    # ratio was another process holding the core while one side ran.
    for label, (seconds, cpu, _) in ours.items():
        rate = N / seconds
        target = " (target >= 1: " + ("met)" if rate >= bt_rate else "NOT met)") if label.startswith("plain") else ""
        print(f"ratio reference {label} / backtesting.py = {rate / bt_rate:.2f} wall, {bt_cpu / cpu:.2f} CPU{target}")
    plain_result = ours[runs[-1][0]][2]
    plain_trades = [
        (t["entry_bar"], t["side"], t["entry_price"], t["exit_bar"], t["exit_price"]) for t in plain_result.trades
    ]
    for line in compare_trades(plain_trades, theirs)[1]:
        print(f"plain new strategy vs backtesting.py: {line}")


if __name__ == "__main__":
    main()
