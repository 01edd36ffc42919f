"""Trading calendars: when an instrument's market is open, from pandas-market-calendars.

Schedules are built once per (calendar, year) and kept in process memory as sorted arrays of open intervals, so
``market_status`` and ``open_seconds_between`` are a binary search, cheap enough for a tick that asks them for
every bot many times a second. CME Globex equity futures use ``CME_Equity``, which models holidays, early closes
and the daily 16:00-17:00 CT maintenance break (exchange_calendars' ``CMES`` does not).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas_market_calendars as mcal

ALWAYS_OPEN = "24/7"

# CME product roots and the calendar of their Globex session; anything not listed has no calendar (fail closed).
PRODUCT_CALENDARS: dict[str, str] = {
    **dict.fromkeys(["ES", "MES", "NQ", "MNQ", "YM", "MYM", "RTY", "M2K", "EMD", "NKD"], "CME_Equity"),
    **dict.fromkeys(["ZN", "ZB", "ZF", "ZT", "UB", "TN", "TWE"], "CME_Bond"),
    **dict.fromkeys(["CL", "MCL", "QM", "NG", "QG", "RB", "HO"], "CMEGlobex_Energy"),
    **dict.fromkeys(["GC", "MGC", "SI", "SIL", "HG", "PL", "PA"], "CMEGlobex_Metals"),
    **dict.fromkeys(["6E", "6J", "6B", "6A", "6C", "6S", "6N", "M6E", "M6A", "M6B"], "CMEGlobex_FX"),
    **dict.fromkeys(["ZC", "ZS", "ZW", "ZM", "ZL", "KE"], "CMEGlobex_Grains"),
    **dict.fromkeys(["LE", "HE", "GF"], "CMEGlobex_Livestock"),
    **dict.fromkeys(["BTC", "MBT", "ETH", "MET"], "CME Globex Crypto"),
}
SUPPORTED_CALENDARS: frozenset[str] = frozenset(PRODUCT_CALENDARS.values()) | {ALWAYS_OPEN, "24/5"}

_MONTH_CODES = "FGHJKMNQUVXZ"
_CONTRACT = re.compile(rf"^(?P<root>[A-Z0-9]{{1,4}}?)[{_MONTH_CODES}]\d{{1,2}}$")
_NS_PER_SECOND = 1_000_000_000


class UnknownCalendar(ValueError):
    pass


def product_root(symbol: str) -> str:
    """ES from ES, ESZ6, ESZ26 or Databento's continuous ES.c.0."""
    head = symbol.strip().upper().split(".", 1)[0]
    if head in PRODUCT_CALENDARS:
        return head
    match = _CONTRACT.match(head)
    return match.group("root") if match else head


def calendar_for(symbol: str, asset_class: str) -> str | None:
    """The calendar an instrument should use: 24/7 for crypto spot, the product map for CME futures."""
    if asset_class == "crypto":
        return ALWAYS_OPEN
    return PRODUCT_CALENDARS.get(product_root(symbol))


def validate_calendar_name(name: str) -> None:
    from django.core.exceptions import ValidationError

    if name not in SUPPORTED_CALENDARS:
        raise ValidationError(f"{name!r} is not a supported calendar; one of {', '.join(sorted(SUPPORTED_CALENDARS))}.")


@dataclass(frozen=True)
class _Intervals:
    """Open intervals (breaks split a session in two), sorted, as epoch nanoseconds, with their session's data."""

    opens: np.ndarray
    closes: np.ndarray
    labels: tuple[date, ...]
    session_opens: np.ndarray
    session_closes: np.ndarray


@functools.lru_cache(maxsize=64)
def _calendar(name: str):
    """The calendar ``name``, built once (every tick batch asks for its instrument's, twice, at some 20 us a build);
    an unsupported name raises each time."""
    if name not in SUPPORTED_CALENDARS:
        raise UnknownCalendar(f"unsupported calendar {name!r}")
    return mcal.get_calendar(name)


@functools.lru_cache(maxsize=256)
def _year_intervals(name: str, year: int) -> _Intervals:
    schedule = _calendar(name).schedule(start_date=f"{year}-01-01", end_date=f"{year}-12-31")
    opens, closes, labels, session_opens, session_closes = [], [], [], [], []

    def add(start, end, label, session_open, session_close):
        if end > start:
            opens.append(start)
            closes.append(end)
            labels.append(label)
            session_opens.append(session_open)
            session_closes.append(session_close)

    as_ns = {column: schedule[column].to_numpy(dtype="datetime64[ns]").astype(np.int64) for column in schedule.columns}
    for index, label in enumerate(schedule.index.date):
        market_open, market_close = int(as_ns["market_open"][index]), int(as_ns["market_close"][index])
        if "break_start" in as_ns:
            break_start, break_end = int(as_ns["break_start"][index]), int(as_ns["break_end"][index])
            if market_open < break_start < break_end < market_close:
                add(market_open, break_start, label, market_open, market_close)
                add(break_end, market_close, label, market_open, market_close)
                continue
        add(market_open, market_close, label, market_open, market_close)
    return _Intervals(
        np.array(opens, dtype=np.int64),
        np.array(closes, dtype=np.int64),
        tuple(labels),
        np.array(session_opens, dtype=np.int64),
        np.array(session_closes, dtype=np.int64),
    )


@functools.lru_cache(maxsize=256)
def _window(name: str, year: int) -> _Intervals:
    """The sessions of the year before, the year and the year after: enough for any lookup at a time in ``year``."""
    parts = [_year_intervals(name, y) for y in (year - 1, year, year + 1)]
    return _Intervals(
        np.concatenate([p.opens for p in parts]),
        np.concatenate([p.closes for p in parts]),
        tuple(label for p in parts for label in p.labels),
        np.concatenate([p.session_opens for p in parts]),
        np.concatenate([p.session_closes for p in parts]),
    )


def _to_ns(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("market hours need an aware datetime")
    return int(at.timestamp()) * _NS_PER_SECOND + at.microsecond * 1000


def _to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // _NS_PER_SECOND, tz=UTC).replace(microsecond=(ns % _NS_PER_SECOND) // 1000)


@dataclass(frozen=True)
class MarketStatus:
    calendar: str
    at: datetime
    is_open: bool
    always_open: bool
    session: date | None  # the trading day whose hours contain ``at`` (also during its break)
    session_open: datetime | None
    session_close: datetime | None
    next_open: datetime | None  # None while open around the clock
    next_close: datetime | None  # None for a market that never closes

    def as_dict(self) -> dict:
        return {
            "calendar": self.calendar,
            "at": self.at,
            "is_open": self.is_open,
            "always_open": self.always_open,
            "session": self.session,
            "session_open": self.session_open,
            "session_close": self.session_close,
            "next_open": self.next_open,
            "next_close": self.next_close,
        }


def calendar_status(calendar: str, at: datetime) -> MarketStatus:
    """Open or closed at ``at``, the session in progress, and the next open and close."""
    at_ns = _to_ns(at)
    at = _to_datetime(at_ns)
    if calendar == ALWAYS_OPEN:
        _calendar(calendar)
        day = at.date()
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return MarketStatus(calendar, at, True, True, day, start, None, None, None)
    window = _window(calendar, at.year)
    position = int(np.searchsorted(window.opens, at_ns, side="right")) - 1  # last interval opening at or before ``at``
    is_open = position >= 0 and at_ns < window.closes[position]
    session = session_open = session_close = None
    if position >= 0 and at_ns < window.session_closes[position]:
        session = window.labels[position]
        session_open = _to_datetime(int(window.session_opens[position]))
        session_close = _to_datetime(int(window.session_closes[position]))
    following = position + 1
    if following >= len(window.opens):
        raise UnknownCalendar(f"calendar {calendar} has no sessions after {at.isoformat()}")
    if is_open:
        next_close_ns = _run_end(window, position)
        next_open_ns = int(window.opens[np.searchsorted(window.opens, next_close_ns, side="right")])
    else:
        next_open_ns = int(window.opens[following])
        next_close_ns = _run_end(window, following)
    return MarketStatus(
        calendar,
        at,
        bool(is_open),
        False,
        session,
        session_open,
        session_close,
        _to_datetime(next_open_ns),
        _to_datetime(next_close_ns),
    )


def _run_end(window: _Intervals, position: int) -> int:
    """Close of the interval at ``position``, following intervals that open the moment the previous one closes."""
    close = int(window.closes[position])
    while position + 1 < len(window.opens) and int(window.opens[position + 1]) <= close:
        position += 1
        close = max(close, int(window.closes[position]))
    return close


def open_seconds_between(calendar: str, start: datetime, end: datetime) -> float:
    """Seconds the market was open in [start, end): how much trading time a bar has missed since it closed."""
    start_ns, end_ns = _to_ns(start), _to_ns(end)
    if end_ns <= start_ns:
        return 0.0
    if calendar == ALWAYS_OPEN:
        _calendar(calendar)
        return (end_ns - start_ns) / _NS_PER_SECOND
    total = 0
    for year in range(_to_datetime(start_ns).year, _to_datetime(end_ns).year + 1):
        intervals = _year_intervals(calendar, year)
        overlap = np.minimum(intervals.closes, end_ns) - np.maximum(intervals.opens, start_ns)
        total += int(overlap[overlap > 0].sum())
    return total / _NS_PER_SECOND
