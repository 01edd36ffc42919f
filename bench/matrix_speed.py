"""Matrix speed: 1,000 parameter sets of every shipped strategy on 100,000 one-minute bars, in-sample and
out-of-sample each, with metrics and classification, fanned out in chunks over worker processes as the Celery chunks
are. Each strategy's sets are a seeded random sample of its space (lookbacks up to 400 bars, shorts allowed or not).

Measures the per-chunk work of ``backtests.matrices`` (``evaluate`` + ``classify``) without the broker and the
database, which add one bar read per chunk and one insert of its results.

Run: .venv/bin/python bench/matrix_speed.py   (BENCH_WORKERS=2 by default, BENCH_CHUNK=25; BENCH_STRATEGIES, comma
separated, picks strategies). Exit status 1 when a strategy misses the 30 s target.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from backtests.classification import classify  # noqa: E402
from backtests.matrices import expand_sets  # noqa: E402
from backtests.matrix_chunks import evaluate  # noqa: E402
from bots.strategies import Bars  # noqa: E402
from execution.fill_model import FillModel  # noqa: E402
from execution.models import Instrument  # noqa: E402

N = int(os.environ.get("BENCH_BARS", 100_000))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
CHUNK = int(os.environ.get("BENCH_CHUNK", 25))
COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def make_bars(n: int) -> Bars:
    rng = np.random.default_rng(42)
    close = 4000 + np.cumsum(np.round(rng.normal(0, 1.0, n) * 4) / 4)
    open_ = np.concatenate(([4000.0], close[:-1]))
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n).astype("timedelta64[m]")
    return Bars.from_columns(
        ts=ts,
        open=open_,
        high=np.maximum(open_, close) + 0.25,
        low=np.minimum(open_, close) - 0.25,
        close=close,
        volume=np.full(n, 100.0),
    )


SPACES = {
    "ma_crossover": {"fast": {"min": 2, "max": 50}, "slow": {"min": 51, "max": 400}, "allow_short": [False, True]},
    "donchian_breakout": {
        "entry_lookback": {"min": 10, "max": 400},
        "exit_lookback": {"min": 2, "max": 200},
        "allow_short": [False, True],
    },
    "zscore_mean_reversion": {
        "lookback": {"min": 10, "max": 400},
        "entry_z": {"min": 1.0, "max": 3.0},
        "exit_z": {"min": 0.0, "max": 0.9},
        "allow_short": [False, True],
    },
}
# 1,000 valid sets of each (a sample of 1,500: the strategy drops the combinations it refuses, exit > entry, ...)
SETS = {
    name: expand_sets(strategy=name, base={}, mode="random", samples=1500, seed=1, space=space)[:1000]
    for name, space in SPACES.items()
}


def run_chunk(task: tuple[str, int, int]) -> tuple[int, float]:
    """The chunk's sets, and the CPU seconds its worker spent on them."""
    strategy, first, stop = task
    cpu = time.process_time()
    bars = make_bars(N)  # each worker reads its bars once per chunk, as a Celery chunk does
    cut = int(N * 0.7)
    instrument = Instrument(symbol="ES", tick_size=Decimal("0.25"), multiplier=Decimal("50"), asset_class="future")
    in_sample = [(instrument, Bars(*(getattr(bars, c)[:cut] for c in COLUMNS)))]
    out_sample = [(instrument, Bars(*(getattr(bars, c)[cut:] for c in COLUMNS)))]
    model = FillModel(slippage_ticks=1, fee_per_unit=Decimal("2.5"))
    for params in SETS[strategy][first:stop]:
        common = dict(strategy=strategy, params=params, model=model, capital=1e6, days_per_year=252)
        is_m, oos_m = evaluate(legs=in_sample, **common), evaluate(legs=out_sample, **common)
        classify(is_m, oos_metrics=oos_m)
    return stop - first, time.process_time() - cpu


def main() -> None:
    names = [n for n in os.environ.get("BENCH_STRATEGIES", ",".join(SPACES)).split(",") if n]
    print(
        f"{N:,} bars (70/30 in/out-of-sample), chunks of {CHUNK}, {WORKERS} worker processes, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    results = {}
    with ProcessPoolExecutor(WORKERS) as pool:
        for name in names:
            sets = SETS[name]
            chunks = [(name, i, min(i + CHUNK, len(sets))) for i in range(0, len(sets), CHUNK)]
            start = time.perf_counter()
            counts, cpu = zip(*pool.map(run_chunk, chunks))
            elapsed = time.perf_counter() - start
            done = sum(counts)
            results[name] = elapsed
            # On a shared machine the wall time includes waiting for the cores; the workers' CPU seconds over the
            # worker count is what the wall time would be with the cores to themselves.
            print(
                f"{name}: {done} sets in {elapsed:.1f} s = {done / elapsed:.1f} sets/s, {done * N / elapsed:,.0f} "
                f"bars/s (target under 30 s on 2 cores: {'met' if elapsed < 30 else 'NOT met'}); workers' CPU "
                f"{sum(cpu):.1f} s = {sum(cpu) / WORKERS:.1f} s over {WORKERS} workers"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if any(elapsed >= 30 for elapsed in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
