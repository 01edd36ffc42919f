"""Bars for a backtest: only stored bars, read in one query, and the gaps in them found (never filled).

A gap is a stretch of open-market time of at least one timeframe with no bar: between two stored bars, before the
first or after the last within the range. Closed-market time (nights, weekends, holidays, the CME daily break) is
not a gap, so the calendar of the instrument decides, as it does for the live tick's staleness check.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from django.db import connection

from bots.strategies import Bars
from execution.marketdata.calendars import open_seconds_between
from execution.models import Bar, Instrument
from bots.timeframes import timeframe_delta, timeframe_seconds

_RANGE_SQL = f"""
SELECT (extract(epoch FROM ts) * 1000000)::bigint, open::float8, high::float8, low::float8, close::float8,
       volume::float8
  FROM {Bar._meta.db_table}
 WHERE instrument_id = %s AND timeframe = %s AND ts >= %s AND ts <= %s
 ORDER BY ts
"""


def load_bars(*, instrument: Instrument, timeframe: str, start: datetime, end: datetime) -> Bars:
    """Stored bars with ``start <= ts`` and ``ts + timeframe <= end`` (complete within the range), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(_RANGE_SQL, [instrument.id, timeframe, start, end - timeframe_delta(timeframe)])
        rows = cursor.fetchall()
    ts = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)).astype("datetime64[us]")
    prices = np.array([row[1:] for row in rows], dtype=np.float64).reshape(len(rows), 5)
    return Bars.from_columns(
        ts=ts, open=prices[:, 0], high=prices[:, 1], low=prices[:, 2], close=prices[:, 3], volume=prices[:, 4]
    )


def _micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _dt(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def find_gaps(*, instrument: Instrument, timeframe: str, start: datetime, end: datetime, ts: np.ndarray) -> list[dict]:
    """Every stretch of open-market time without a bar, each with its start, end and the bars it misses."""
    step = timeframe_seconds(timeframe)
    micros = ts.astype("datetime64[us]").astype(np.int64)
    # Candidate holes: from the range start (or a bar's close) to the next bar's open (or the range end).
    starts = np.concatenate(([_micros(start)], micros + step * 1_000_000))
    ends = np.concatenate((micros, [_micros(end)]))
    candidates = np.flatnonzero(ends - starts >= step * 1_000_000)
    gaps = []
    for k in candidates:
        hole_start, hole_end = _dt(int(starts[k])), _dt(int(ends[k]))
        missing = open_seconds_between(instrument.calendar, hole_start, hole_end)
        if missing >= step:
            gaps.append(
                {
                    "instrument": instrument.symbol,
                    "start": hole_start.isoformat(),
                    "end": hole_end.isoformat(),
                    "missing_bars": int(missing // step),
                }
            )
    return gaps
