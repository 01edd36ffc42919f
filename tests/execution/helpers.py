from datetime import datetime
from decimal import Decimal

from execution.marketdata.barfiles import BarRow
from execution.marketdata.services import bars_ingest
from bots.timeframes import timeframe_delta


def bar_rows(start: datetime, count: int, *, timeframe: str = "1m", base: str = "100") -> list[BarRow]:
    """A rising series: bar i opens at base + i, closes at base + i + 0.5."""
    step = timeframe_delta(timeframe)
    rows = []
    for i in range(count):
        price = Decimal(base) + i
        rows.append(
            BarRow(
                start + i * step,
                price,
                price + 1,
                price - Decimal("0.5"),
                price + Decimal("0.5"),
                Decimal(10 + i),
                where=f"row {i}",
            )
        )
    return rows


def store_bars(instrument, start: datetime, count: int, *, timeframe: str = "1m", skip: set[int] = frozenset()):
    rows = [row for i, row in enumerate(bar_rows(start, count, timeframe=timeframe)) if i not in skip]
    return bars_ingest(instrument=instrument, timeframe=timeframe, rows=rows, source="databento", actor_name="test")
