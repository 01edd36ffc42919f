"""Runs of closed days: the same gaps and islands the window computes, stored once a day is over.

A month's window over raw traces reads 43,200 rows of a bot (one a minute) and pays a window function on each; the
runs of a day are about fifty. So once a UTC day is over (plus ``TRACE_SUMMARY_DELAY_MINUTES``, for the last bar's
tick) beat stores its runs (``TraceDayRun``) and marks the day (``TraceDaySummary``), and the window reads runs for
marked days and traces for the rest. A trace written later for a marked day (``manage.py tick --at`` a past bar)
re-summarizes that bot's day in the writer's transaction, so a marked day never disagrees with its traces.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from controlplane import tenancy
from controlplane.selectors import all_tenant_ids
from traces.models import TraceDayRun, TraceDaySummary

logger = logging.getLogger(__name__)


def runs_sql(where: str, segment: str = "0") -> str:
    """The runs of the traces matching ``where`` (live/paper ticks of the tenant in %(tenant_id)s), per bot,
    instrument and ``segment`` (an expression splitting traces into ranges whose runs must not join), in bar order:
    a trace starts a run when the previous one has another reason (or there is none: lag's default '' is no
    reason), ends one likewise with the next; a decision (reason NULL, the model's check constraint) is a run of
    its own. Only the bounds are kept, and each start's run ends at the next bound: length is the difference of
    their positions. Columns: bot_id, instrument, kind, reason_code, intent_id, run_start, run_end, run_length."""
    return f"""
SELECT bot_id, instrument, kind, reason_code, intent_id, run_start, run_end, run_length FROM (
    SELECT bot_id, instrument, kind, reason_code, intent_id, starts_run, bar_ts AS run_start,
           CASE WHEN ends_run THEN bar_ts ELSE lead(bar_ts) OVER by_position END AS run_end,
           CASE WHEN ends_run THEN 1 ELSE lead(position) OVER by_position - position + 1 END AS run_length
    FROM (
        SELECT * FROM (
            SELECT bot_id, instrument, {segment} AS segment, bar_ts, kind, reason_code, intent_id,
                   row_number() OVER by_bar AS position,
                   (reason_code IS NULL
                    OR lag(reason_code, 1, '') OVER by_bar IS DISTINCT FROM reason_code) AS starts_run,
                   (reason_code IS NULL
                    OR lead(reason_code, 1, '') OVER by_bar IS DISTINCT FROM reason_code) AS ends_run
            FROM traces_ticktrace
            WHERE tenant_id = %(tenant_id)s AND context = 'tick' AND bot_id IS NOT NULL AND ({where})
            WINDOW by_bar AS (PARTITION BY bot_id, instrument, {segment} ORDER BY bar_ts)
        ) marked
        WHERE starts_run OR ends_run
    ) bounds
    WINDOW by_position AS (PARTITION BY bot_id, instrument, segment ORDER BY position)
) runs
WHERE starts_run
"""


_STORE_SQL = f"""
INSERT INTO traces_tracedayrun (tenant_id, bot_id, instrument, day, kind, reason_code, intent_id, run_start,
                                run_end, length)
SELECT %(tenant_id)s, bot_id, instrument, %(day)s, kind, reason_code, intent_id, run_start, run_end, run_length
FROM ({runs_sql("bar_ts >= %(lo)s AND bar_ts < %(hi)s AND (%(bots)s::bigint[] IS NULL OR bot_id = ANY(%(bots)s))")}) r
"""


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def trace_day_summarize(*, day: date, bot_ids: list[int] | None = None) -> int:
    """Store the runs of the tenant in context's ``day`` (all its bots, or ``bot_ids`` only) and mark the day;
    returns the runs stored. Run twice, it stores the same runs."""
    tenant_id = tenancy.require_tenant_id()
    lo, hi = _day_bounds(day)
    with transaction.atomic():
        runs = TraceDayRun.objects.filter(day=day)
        if bot_ids is not None:
            runs = runs.filter(bot_id__in=bot_ids)
        runs.delete()
        with connection.cursor() as cursor:
            cursor.execute(_STORE_SQL, {"tenant_id": tenant_id, "day": day, "lo": lo, "hi": hi, "bots": bot_ids})
            stored = cursor.rowcount
        total = TraceDayRun.objects.filter(day=day).count() if bot_ids is not None else stored
        TraceDaySummary.objects.update_or_create(tenant_id=tenant_id, day=day, defaults={"runs": total})
    return stored


def resummarize_late_traces(days_bots: dict[date, set[int]]) -> None:
    """The writer's hook: traces were written for past days; those days already summarized are summarized again
    for the bots concerned, in the writer's transaction."""
    marked = set(TraceDaySummary.objects.filter(day__in=list(days_bots)).values_list("day", flat=True))
    for day in sorted(marked):
        trace_day_summarize(day=day, bot_ids=sorted(days_bots[day]))
        logger.info("trace day summarized again after a late trace", extra={"day": day.isoformat()})


def trace_days_summarize_closed(*, now: datetime | None = None) -> dict[int, list[str]]:
    """Beat's catch-up: for every tenant, summarize each closed day still kept (within TRACE_RETENTION_DAYS) that
    has no summary yet, and forget summaries past retention. Returns the days summarized per tenant."""
    now = now or timezone.now()
    last_closed = (now - timedelta(minutes=settings.TRACE_SUMMARY_DELAY_MINUTES)).date() - timedelta(days=1)
    cutoff = now.date() - timedelta(days=settings.TRACE_RETENTION_DAYS)
    done: dict[int, list[str]] = {}
    for tenant_id in all_tenant_ids():  # retention and summaries cover every stored trace
        with tenancy.tenant_context(tenant_id), transaction.atomic():
            TraceDayRun.objects.filter(day__lt=cutoff).delete()
            TraceDaySummary.objects.filter(day__lt=cutoff).delete()
            have = set(TraceDaySummary.objects.filter(day__gte=cutoff).values_list("day", flat=True))
        day = cutoff
        while day <= last_closed:
            if day not in have:
                with tenancy.tenant_context(tenant_id):
                    trace_day_summarize(day=day)
                done.setdefault(tenant_id, []).append(day.isoformat())
            day += timedelta(days=1)
    return done
