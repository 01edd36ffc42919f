"""Real-shaped bar series for backtest tests: a seeded random walk on the tick grid, stored or in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from bots.strategies import Bars
from execution.marketdata.barfiles import BarRow
from execution.marketdata.services import bars_ingest
from bots.timeframes import timeframe_delta

START = datetime(2026, 3, 2, tzinfo=UTC)


def walk(n: int, *, seed: int = 7, tick: float = 0.25, base: float = 4000.0, drift: float = 0.0) -> dict:
    """OHLCV columns of a seeded random walk: every price on the tick grid, high/low bounding open/close."""
    rng = np.random.default_rng(seed)
    steps = np.round(rng.normal(drift, 4, n) / tick) * tick
    close = base + np.cumsum(steps)
    open_ = np.concatenate(([base], close[:-1]))
    high = np.maximum(open_, close) + tick * rng.integers(0, 4, n)
    low = np.minimum(open_, close) - tick * rng.integers(0, 4, n)
    volume = rng.integers(1, 50, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def memory_bars(n: int, *, timeframe: str = "1m", **kwargs) -> Bars:
    cols = walk(n, **kwargs)
    ts = np.datetime64(START.replace(tzinfo=None), "us") + np.arange(n) * np.timedelta64(
        int(timeframe_delta(timeframe).total_seconds()), "s"
    )
    return Bars.from_columns(ts=ts, **cols)


def clustered_bars(n: int, *, seed: int, tick: float, base: float, minutes: int = 1) -> Bars:
    """A random walk on the tick grid whose volatility switches between calm and wild regimes, with opening gaps,
    flat stretches (equal closes: zero dispersion, ties of every channel and mean) and highs/lows that repeat."""
    rng = np.random.default_rng(seed)
    regime = np.repeat(rng.choice([0.3, 1.0, 4.0], size=n // 50 + 1), 50)[:n]
    steps = np.round(rng.normal(0, 1, n) * regime * 8) * tick
    flat = np.repeat(rng.random(n // 25 + 1) < 0.15, 25)[:n]  # a stretch in seven is flat
    steps[flat] = 0.0
    close = base + np.cumsum(steps)
    gaps = np.where(rng.random(n) < 0.02, np.round(rng.normal(0, 30, n)) * tick, 0.0)
    open_ = np.concatenate(([base], close[:-1])) + gaps
    wick = np.where(flat, 0, rng.integers(0, 4, n))
    high = np.maximum(open_, close) + tick * wick
    low = np.minimum(open_, close) - tick * np.where(flat, 0, rng.integers(0, 4, n))
    volume = np.where(flat, 0.0, rng.integers(1, 60, n).astype(float))
    ts = np.datetime64("2026-03-02T00:00", "us") + np.arange(n) * np.timedelta64(60 * minutes, "s")
    return Bars.from_columns(ts=ts, open=open_, high=high, low=low, close=close, volume=volume)


def store_walk(instrument, n: int, *, timeframe: str = "1m", skip: frozenset = frozenset(), start=START, **kwargs):
    cols = walk(n, tick=float(instrument.tick_size), **kwargs)
    step = timeframe_delta(timeframe)
    rows = [
        BarRow(
            start + i * step,
            *(Decimal(repr(float(cols[c][i]))) for c in ("open", "high", "low", "close", "volume")),
            where=f"row {i}",
        )
        for i in range(n)
        if i not in skip
    ]
    return bars_ingest(instrument=instrument, timeframe=timeframe, rows=rows, source="imported", actor_name="test")
