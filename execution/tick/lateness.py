"""When a live tick batch is too late to act: its allowed lateness, by the wall clock, and when beat's message for
it expires unstarted. A batch that decides on a bar the next batch is about to replace would send orders priced
on a past market."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from bots.timeframes import timeframe_delta, timeframe_seconds


def allowed_lateness(timeframe: str) -> timedelta:
    """How long after its ``as_of`` a live batch may still start and decide: ``TICK_MAX_LATENESS_SECONDS``, but
    never more than half the timeframe (a 1m batch half a minute late decides on a bar the next batch is about to
    replace). Settings refuse a ``TICK_DELAY_SECONDS`` that would make every batch late."""
    return timedelta(seconds=min(settings.TICK_MAX_LATENESS_SECONDS, timeframe_seconds(timeframe) / 2))


def batch_expires(as_of: datetime, timeframe: str) -> datetime:
    """When beat's message for the batch at ``as_of`` expires unstarted: just under one timeframe, so a backlog is
    dropped rather than piled up. Between the allowed lateness and this a batch that starts records TICK_LATE
    for each bot, so the why-not window shows why the bar went undecided."""
    return as_of + timeframe_delta(timeframe) * 0.9


def tick_lateness(*, as_of: datetime, timeframe: str, started_at: datetime | None) -> dict | None:
    """The TICK_LATE details when a live batch started past its allowed lateness, judged by the wall clock at
    its start (``started_at``), else None."""
    if started_at is None:
        return None
    lateness, allowed = started_at - as_of, allowed_lateness(timeframe)
    if lateness <= allowed:
        return None
    return {
        "as_of": as_of.isoformat(),
        "started_at": started_at.isoformat(),
        "lateness_seconds": lateness.total_seconds(),
        "allowed_lateness_seconds": allowed.total_seconds(),
    }
