"""Bar timeframes: the names used everywhere (CLI, API, models) and their length."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models


class Timeframe(models.TextChoices):
    S1 = "1s", "1 second"
    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    M30 = "30m", "30 minutes"
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    D1 = "1d", "1 day"


TIMEFRAME_SECONDS: dict[str, int] = {
    "1s": 1,
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
}


def timeframe_seconds(timeframe: str) -> int:
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; one of {', '.join(TIMEFRAME_SECONDS)}") from None


def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(seconds=timeframe_seconds(timeframe))


def is_on_grid(ts: datetime, timeframe: str) -> bool:
    """A bar's ts is its open time, a whole multiple of the timeframe since the Unix epoch (UTC)."""
    seconds = timeframe_seconds(timeframe)
    return ts.microsecond == 0 and int(ts.timestamp()) % seconds == 0
