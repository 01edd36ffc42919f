"""Reads the tick, the API and the backtests share: market status, bar history, and the freshness verdict.

Fail closed: when the bar a tick needs is missing or stale, the answer says so (``DATA_UNAVAILABLE`` /
``DATA_STALE``) and carries no price. Bars are complete only once their period has ended (``ts + timeframe <=
as_of``), so a tick never sees a bar still forming, and a replay at a past ``as_of`` sees exactly what a live
tick would have.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.db import connection, transaction

from bots.timeframes import timeframe_delta, timeframe_seconds
from execution.marketdata.calendars import MarketStatus, calendar_status, open_seconds_between
from execution.models import Bar, Instrument


class DataProblem(enum.StrEnum):
    """Why a tick has no usable bar; the values are the no-trade reason codes of the same name."""

    DATA_UNAVAILABLE = "DATA_UNAVAILABLE"
    DATA_STALE = "DATA_STALE"


def instrument_by_symbol(symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol.strip()).first()


def market_status(instrument: Instrument, at: datetime) -> MarketStatus:
    """Open or closed for ``instrument`` at ``at``, its session, and the next open and close."""
    return calendar_status(instrument.calendar, at)


@dataclass(frozen=True)
class BarHistory:
    """The last bars up to ``as_of``, oldest first, as read-only numpy arrays (float64; ts as datetime64[us] UTC).

    Read-only because one history is shared by every bot on the instrument in a tick batch.
    """

    instrument_id: int
    timeframe: str
    as_of: datetime
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def last_ts(self) -> datetime | None:
        if not len(self.ts):
            return None
        return datetime.fromtimestamp(int(self.ts[-1].astype(np.int64)) / 1_000_000, tz=UTC)


_HISTORY_SQL = f"""
SELECT (extract(epoch FROM ts) * 1000000)::bigint, open::float8, high::float8, low::float8, close::float8,
       volume::float8
  FROM {Bar._meta.db_table}
 WHERE instrument_id = %s AND timeframe = %s AND ts <= %s
 ORDER BY ts DESC
 LIMIT %s
"""


def bar_history(*, instrument_id: int, timeframe: str, as_of: datetime, count: int) -> BarHistory:
    """The ``count`` most recent complete bars at ``as_of``: one indexed query, newest-first scan, reversed."""
    if count < 1:
        raise ValueError("count must be at least 1")
    latest_open = as_of - timeframe_delta(timeframe)
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [instrument_id, timeframe, latest_open, count])
        rows = cursor.fetchall()
    rows.reverse()
    return _history(instrument_id, timeframe, as_of, rows)


# Several instruments' histories in one statement: the same indexed newest-first scan per instrument (LATERAL), each
# with its own count.
_HISTORIES_SQL = f"""
SELECT q.id, h.* FROM unnest(%s::bigint[], %s::bigint[]) AS q(id, n)
CROSS JOIN LATERAL (
    SELECT (extract(epoch FROM ts) * 1000000)::bigint AS us, open::float8, high::float8, low::float8, close::float8,
           volume::float8
      FROM {Bar._meta.db_table}
     WHERE instrument_id = q.id AND timeframe = %s AND ts <= %s
     ORDER BY ts DESC
     LIMIT q.n) AS h
 ORDER BY q.id, h.us
"""


def bar_histories(*, counts: dict[int, int], timeframe: str, as_of: datetime) -> dict[int, BarHistory]:
    """``bar_history`` of each instrument id in ``counts`` (with its count), in one statement."""
    if any(count < 1 for count in counts.values()):
        raise ValueError("count must be at least 1")
    latest_open = as_of - timeframe_delta(timeframe)
    ids = list(counts)
    with connection.cursor() as cursor:
        cursor.execute(_HISTORIES_SQL, [ids, [counts[pk] for pk in ids], timeframe, latest_open])
        rows = cursor.fetchall()
    by_instrument: dict[int, list[tuple]] = {pk: [] for pk in ids}
    for row in rows:
        by_instrument[row[0]].append(row[1:])
    return {pk: _history(pk, timeframe, as_of, found) for pk, found in by_instrument.items()}


def _history(instrument_id: int, timeframe: str, as_of: datetime, rows: list[tuple]) -> BarHistory:
    """A history from its rows, oldest first."""
    ts = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)).astype("datetime64[us]")
    prices = np.array([row[1:] for row in rows], dtype=np.float64).reshape(len(rows), 5)
    columns = [ts] + [np.ascontiguousarray(prices[:, i]) for i in range(5)]
    for column in columns:
        column.flags.writeable = False
    return BarHistory(instrument_id, timeframe, as_of, *columns)


@dataclass(frozen=True)
class BarCheck:
    """The verdict on the latest bar: usable (``problem`` is None) or why not, with the values that decided it."""

    problem: DataProblem | None
    bar_ts: datetime | None = None
    close: float | None = None
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def bar_staleness(*, instrument: Instrument, timeframe: str, bar_ts: datetime, as_of: datetime) -> tuple[bool, dict]:
    """(stale, the values that decided it): stale when more open-market time than one timeframe has passed since
    the bar closed. The one freshness rule of the tick (:func:`check_freshness`) and of every mark
    (``execution.risk.positions.latest_mark``).

    Counting only open time means Friday's last bar is still current on Sunday before the open, and a
    holiday is not a gap; an hour of trading with no new 1m bar is.
    """
    bar_close = bar_ts + timeframe_delta(timeframe)
    allowed = timeframe_seconds(timeframe)
    missed = open_seconds_between(instrument.calendar, bar_close, as_of)
    details = {
        "instrument": instrument.symbol,
        "timeframe": timeframe,
        "as_of": as_of.isoformat(),
        "bar_ts": bar_ts.isoformat(),
        "open_seconds_since_bar_close": missed,
        "allowed_seconds": allowed,
    }
    return missed > allowed, details


def check_freshness(*, instrument: Instrument, timeframe: str, as_of: datetime, history: BarHistory) -> BarCheck:
    """The tick's verdict on its latest bar: missing, stale (:func:`bar_staleness`) or usable."""
    if not len(history):
        return BarCheck(
            DataProblem.DATA_UNAVAILABLE,
            details={
                "instrument": instrument.symbol,
                "timeframe": timeframe,
                "as_of": as_of.isoformat(),
                "reason": "no complete bar at or before as_of",
            },
        )
    bar_ts = history.last_ts
    stale, details = bar_staleness(instrument=instrument, timeframe=timeframe, bar_ts=bar_ts, as_of=as_of)
    if stale:
        return BarCheck(DataProblem.DATA_STALE, bar_ts=bar_ts, details=details)
    return BarCheck(None, bar_ts=bar_ts, close=float(history.close[-1]), details=details)


@dataclass(frozen=True)
class TickBars:
    """What one (instrument, timeframe) tick batch reads once and hands to every bot on it."""

    instrument: Instrument
    timeframe: str
    as_of: datetime
    status: MarketStatus
    history: BarHistory
    check: BarCheck


def bars_for_tick(*, instrument: Instrument, timeframe: str, as_of: datetime, count: int) -> TickBars:
    """One history read, one calendar lookup, one freshness verdict for a whole tick batch."""
    history = bar_history(instrument_id=instrument.id, timeframe=timeframe, as_of=as_of, count=count)
    return TickBars(
        instrument=instrument,
        timeframe=timeframe,
        as_of=as_of,
        status=market_status(instrument, as_of),
        history=history,
        check=check_freshness(instrument=instrument, timeframe=timeframe, as_of=as_of, history=history),
    )


def bars_for_ticks(*, counts: dict[Instrument, int], timeframe: str, as_of: datetime) -> dict[Instrument, TickBars]:
    """``bars_for_tick`` of several instruments (each with its count), their histories read in one statement."""
    histories = bar_histories(
        counts={instrument.id: count for instrument, count in counts.items()}, timeframe=timeframe, as_of=as_of
    )
    return {
        instrument: TickBars(
            instrument=instrument,
            timeframe=timeframe,
            as_of=as_of,
            status=market_status(instrument, as_of),
            history=histories[instrument.id],
            check=check_freshness(
                instrument=instrument, timeframe=timeframe, as_of=as_of, history=histories[instrument.id]
            ),
        )
        for instrument in counts
    }


def latest_bar(*, instrument: Instrument, timeframe: str, as_of: datetime) -> BarCheck:
    """The bar a tick needs at ``as_of``, or the reason there is none."""
    history = bar_history(instrument_id=instrument.id, timeframe=timeframe, as_of=as_of, count=1)
    return check_freshness(instrument=instrument, timeframe=timeframe, as_of=as_of, history=history)


def market_data_problems(tenant_id: int) -> list[dict]:
    """Stale or missing data in the latest tick batch of each instrument and timeframe the tenant's running bots
    use: each one makes system status DEGRADED, with the fix."""
    from bots.models import Runner
    from controlplane import tenancy
    from execution.marketdata.data_symbols import unmapped_message
    from execution.models import Instrument, TickBatch

    with tenancy.tenant_context(tenant_id), transaction.atomic():
        running = list(
            Runner.objects.filter(status=Runner.Status.RUNNING).values_list(
                "bot__instruments", "bot__timeframe", "bot__data_source"
            )
        )
    wanted = {(symbol, timeframe) for instruments, timeframe, _ in running for symbol in instruments}
    problems = []
    provider_sources = {
        (symbol, source)
        for instruments, _, source in running
        for symbol in instruments
        if source in ("databento", "polygon")
    }
    mappings = dict(
        Instrument.objects.filter(symbol__in={symbol for symbol, _ in provider_sources}).values_list(
            "symbol", "data_symbols"
        )
    )
    for symbol, source in sorted(provider_sources):
        if symbol in mappings and not (mappings[symbol] or {}).get(source):
            message, fix = unmapped_message(symbol, source)
            problems.append(
                {
                    "code": "DATA_UNAVAILABLE",
                    "component": f"market_data:{symbol}:{source}",
                    "message": message,
                    "suggested_fix": fix,
                }
            )
    for symbol, timeframe in sorted(wanted):
        latest = TickBatch.objects.filter(instrument_symbol=symbol, timeframe=timeframe).order_by("-as_of").first()
        if latest is not None and latest.data_problem:
            problems.append(
                {
                    "code": latest.data_problem,
                    "component": f"market_data:{symbol}:{timeframe}",
                    "message": f"The tick at {latest.as_of.isoformat()} found {latest.data_problem} for {symbol} "
                    f"{timeframe}: no orders were sent.",
                    "suggested_fix": "Import the missing bars (python manage.py import_bars) or check the market-data "
                    "provider (GET /api/integrations/status).",
                }
            )
    return problems
