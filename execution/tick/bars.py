"""The bars of a tick's batches: read once per instrument and shared by every tenant (``execution.tick.batches``)."""

from __future__ import annotations

from datetime import datetime

from bots.strategies import Bars
from execution.marketdata.selectors import TickBars, bars_for_tick, bars_for_ticks
from execution.models import Instrument


class BatchBars:
    """The bars of one batch, read once and shared by every tenant: only when a tenant has bots to decide, and
    again only if a later tenant's bots need a longer history (a strategy reads its own trailing window, so extra
    history changes no decision)."""

    def __init__(self, *, instrument: Instrument, timeframe: str, as_of: datetime):
        self.instrument, self.timeframe, self.as_of = instrument, timeframe, as_of
        self.count = 0
        self.tick_bars: TickBars | None = None
        self.strategy_bars: Bars | None = None

    def read(self, count: int) -> tuple[TickBars, Bars | None]:
        if self.needs(count):
            self.keep(
                bars_for_tick(instrument=self.instrument, timeframe=self.timeframe, as_of=self.as_of, count=count),
                count,
            )
        return self.tick_bars, self.strategy_bars

    def needs(self, count: int) -> bool:
        return self.tick_bars is None or count > self.count

    def keep(self, tick_bars: TickBars, count: int) -> None:
        self.tick_bars, self.strategy_bars, self.count = tick_bars, _strategy_bars(tick_bars), count


def read_batch_bars(wanted: list[tuple[BatchBars, int]]) -> None:
    """Read the bars of every batch in ``wanted`` (with the count it needs) that does not hold enough yet, all in one
    statement (they share timeframe and as_of); ``BatchBars.read`` then returns them without a query."""
    missing = {bars.instrument: (bars, count) for bars, count in wanted if bars.needs(count)}
    if not missing:
        return
    first = next(iter(missing.values()))[0]
    read = bars_for_ticks(
        counts={instrument: count for instrument, (_, count) in missing.items()},
        timeframe=first.timeframe,
        as_of=first.as_of,
    )
    for instrument, (bars, count) in missing.items():
        bars.keep(read[instrument], count)


def _strategy_bars(tick_bars: TickBars) -> Bars | None:
    history = tick_bars.history
    if not len(history):
        return None
    return Bars.from_columns(
        ts=history.ts, open=history.open, high=history.high, low=history.low, close=history.close, volume=history.volume
    )
