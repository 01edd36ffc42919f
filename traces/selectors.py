"""Reads of traces shared by the API, the admin panels and the supervisor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from controlplane.tenancy import require_tenant_id
from traces.models import ReasonCode, TickTrace

WHAT_WOULD_CHANGE_IT = {
    ReasonCode.MARKET_CLOSED: "The market opening (see next_open).",
    ReasonCode.DATA_UNAVAILABLE: "A stored bar for the instrument at the tick's time: import bars or fix the data feed.",
    ReasonCode.DATA_STALE: "A fresh bar: check the market-data provider in GET /api/integrations/status.",
    ReasonCode.NO_SIGNAL: "The strategy's conditions being met (see the signal values in the latest trace).",
    ReasonCode.ALREADY_AT_TARGET: "The strategy's target moving away from the current position.",
    ReasonCode.RISK_BLOCKED: "The named limit being raised, or exposure falling below it (see details).",
    ReasonCode.AUTONOMY_NOT_ALLOWED: "The system status being OK again (fix the blockers in the refusal's values, see "
                                     "GET /api/system/status); orders that reduce the position pass meanwhile.",
    ReasonCode.KILLED: "An owner unkilling the bot, its tenant or the system, with a reason.",
    ReasonCode.INTEGRATION_MISSING: "Entering and verifying the missing keys (GET /api/integrations/keys-needed).",
    ReasonCode.RECONCILE_MISMATCH: "A reconcile showing positions agree, or an operator's decision about them.",
    ReasonCode.COOLDOWN: "The cooldown elapsing (see details.until).",
    ReasonCode.TICK_ERROR: "Fixing the error in details.error_code (see the log by trace_id); the circuit breaker "
                           "kills the bot after repeated errors.",
}


def bot_traces(
    *, bot_id: int, kind: str | None = None, since: datetime | None = None, until: datetime | None = None,
    context: str | None = None,
) -> QuerySet[TickTrace]:
    """A bot's traces, newest first; ``since`` is inclusive and ``until`` exclusive, so adjacent windows never
    show a bar twice."""
    queryset = TickTrace.objects.filter(bot_id=bot_id)
    if kind:
        queryset = queryset.filter(kind=kind)
    if since:
        queryset = queryset.filter(bar_ts__gte=since)
    if until:
        queryset = queryset.filter(bar_ts__lt=until)
    if context:
        queryset = queryset.filter(context=context)
    return queryset.order_by("-bar_ts", "-id")


def why_not(*, bot_id: int) -> dict | None:
    """The latest live/paper tick's verdict; for a no-trade, since when its reason has held and what would change it.

    None when the bot has never ticked: the caller must say so rather than invent an answer.
    """
    ticks = TickTrace.objects.filter(bot_id=bot_id, context=TickTrace.Context.TICK)
    latest = ticks.order_by("-bar_ts", "-id").first()
    if latest is None:
        return None
    if latest.kind == TickTrace.Kind.DECISION:
        return {"trading": True, "reason_code": None, "since": latest.bar_ts, "latest_trace_id": latest.id,
                "latest_bar_ts": latest.bar_ts, "details": {}, "what_would_change_it": None,
                "trace_id": latest.trace_id}
    last_different = (
        ticks.filter(bar_ts__lt=latest.bar_ts)
        .exclude(kind=TickTrace.Kind.NO_TRADE, reason_code=latest.reason_code)
        .order_by("-bar_ts")
        .values_list("bar_ts", flat=True)
        .first()
    )
    held = ticks.filter(kind=TickTrace.Kind.NO_TRADE, reason_code=latest.reason_code)
    if last_different is not None:
        held = held.filter(bar_ts__gt=last_different)
    since = held.order_by("bar_ts").values_list("bar_ts", flat=True).first()
    return {
        "trading": False,
        "reason_code": latest.reason_code,
        "since": since,
        "latest_trace_id": latest.id,
        "latest_bar_ts": latest.bar_ts,
        "details": latest.details,
        "what_would_change_it": WHAT_WOULD_CHANGE_IT[ReasonCode(latest.reason_code)],
        "trace_id": latest.trace_id,
    }


# The window's runs in one statement (gaps and islands), read from the one-per-bar index alone (its INCLUDE
# columns) in bar order, so nothing is sorted but the runs' boundaries:
# - ``instruments``: the bot's instruments in the window, one index probe each (a loose index scan: Postgres 15
#   has no skip scan, and DISTINCT would read every trace);
# - ``bounds``: per instrument, in bar order, the traces that start a run (the previous trace has another reason,
#   or none: lag's default '' is no reason) or end one (likewise with lead), with their position; a decision (its
#   reason is NULL, see the model's check constraint) is a run of its own,
#   so every decision is a bound and the first N come out of the same statement, with their intents;
# - ``runs``: each start with the next boundary, which is its own end: length is the difference of positions.
_WINDOW_RUNS_SQL = """
WITH RECURSIVE instruments AS (
    (SELECT instrument FROM traces_ticktrace
     WHERE tenant_id = %(tenant_id)s AND bot_id = %(bot_id)s AND context = 'tick'
       AND bar_ts >= %(start)s AND bar_ts < %(end)s
     ORDER BY instrument LIMIT 1)
    UNION ALL
    SELECT (SELECT t.instrument FROM traces_ticktrace t
            WHERE t.tenant_id = %(tenant_id)s AND t.bot_id = %(bot_id)s AND t.instrument > i.instrument
              AND t.context = 'tick' AND t.bar_ts >= %(start)s AND t.bar_ts < %(end)s
            ORDER BY t.instrument LIMIT 1)
    FROM instruments i WHERE i.instrument IS NOT NULL
), bounds AS (
    SELECT i.instrument, b.bar_ts, b.kind, b.reason_code, b.intent_id, b.position, b.starts_run, b.ends_run
    FROM instruments i CROSS JOIN LATERAL (
        SELECT bar_ts, kind, reason_code, intent_id, position, starts_run, ends_run FROM (
            SELECT bar_ts, kind, reason_code, intent_id, row_number() OVER by_bar AS position,
                   (reason_code IS NULL
                    OR lag(reason_code, 1, '') OVER by_bar IS DISTINCT FROM reason_code) AS starts_run,
                   (reason_code IS NULL
                    OR lead(reason_code, 1, '') OVER by_bar IS DISTINCT FROM reason_code) AS ends_run
            FROM traces_ticktrace
            WHERE tenant_id = %(tenant_id)s AND bot_id = %(bot_id)s AND instrument = i.instrument
              AND context = 'tick' AND bar_ts >= %(start)s AND bar_ts < %(end)s
            WINDOW by_bar AS (ORDER BY bar_ts)
        ) marked
        WHERE starts_run OR ends_run
    ) b
    WHERE i.instrument IS NOT NULL
), runs AS (
    SELECT instrument, kind, reason_code, intent_id, starts_run, bar_ts AS run_start,
           CASE WHEN ends_run THEN bar_ts ELSE lead(bar_ts) OVER by_position END AS run_end,
           CASE WHEN ends_run THEN 1 ELSE lead(position) OVER by_position - position + 1 END AS run_length
    FROM bounds
    WINDOW by_position AS (PARTITION BY instrument ORDER BY position)
)
SELECT kind, reason_code, sum(run_length)::bigint AS count, min(run_start) AS first, max(run_end) AS last,
       (array_agg(run_length ORDER BY run_length DESC, run_start))[1] AS longest_length,
       (array_agg(run_start ORDER BY run_length DESC, run_start))[1] AS longest_start,
       (array_agg(run_end ORDER BY run_length DESC, run_start))[1] AS longest_end,
       (array_agg(instrument ORDER BY run_length DESC, run_start))[1] AS longest_instrument,
       (array_agg(run_start ORDER BY run_start, instrument) FILTER (WHERE kind = 'decision'))[1:%(limit)s]
           AS decision_bars,
       (array_agg(instrument ORDER BY run_start, instrument) FILTER (WHERE kind = 'decision'))[1:%(limit)s]
           AS decision_instruments,
       (array_agg(intent_id ORDER BY run_start, instrument) FILTER (WHERE kind = 'decision'))[1:%(limit)s]
           AS decision_intents
FROM runs
WHERE starts_run
GROUP BY kind, reason_code
ORDER BY count DESC, reason_code
"""

WINDOW_DECISIONS_LIMIT = 100


def retained_from(now: datetime | None = None) -> datetime:
    """The earliest bar the trace store still holds for certain: partitions of days before it are dropped
    (traces.partitions), so a window starting earlier cannot be answered in full."""
    now = now or timezone.now()
    day = (now - timedelta(days=settings.TRACE_RETENTION_DAYS)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def why_not_window(*, bot_id: int, start: datetime, end: datetime,
                   decisions_limit: int = WINDOW_DECISIONS_LIMIT) -> dict:
    """Why the bot did (not) trade over [start, end): per no-trade reason its count, first and last bar and
    longest run; the decisions taken (their count, and the first ``decisions_limit`` with bar, instrument and
    intent; the bot page links a decision's trace by its bar).

    Live/paper ticks only (replays and backtests are not what the bot did). A run is consecutive traces of one
    instrument with the same reason, ended by a trace with another reason or a decision; a gap in ticking (the
    runner stopped) does not end a run, since no trace says anything happened in between. One statement, whatever
    the window's size (see _WINDOW_RUNS_SQL); the tenant is filtered here as well as by RLS (two locks).
    """
    params = {"tenant_id": require_tenant_id(), "bot_id": bot_id, "start": start, "end": end,
              "limit": decisions_limit}
    with connection.cursor() as cursor:
        cursor.execute(_WINDOW_RUNS_SQL, params)
        groups = cursor.fetchall()
    decision_count, decisions = 0, []
    for kind, _, count, *_, bars, instruments, intents in groups:
        if kind == TickTrace.Kind.DECISION:
            decision_count = count
            decisions = [{"bar_ts": bar, "instrument": instrument, "intent_id": intent}
                         for bar, instrument, intent in zip(bars or [], instruments or [], intents or [])]
    reasons = [
        {"reason_code": reason, "count": count, "first": first, "last": last,
         "longest_run": {"length": length, "start": run_start, "end": run_end, "instrument": instrument}}
        for kind, reason, count, first, last, length, run_start, run_end, instrument, *_ in groups
        if kind == TickTrace.Kind.NO_TRADE
    ]
    kept_from = retained_from()
    return {
        "from": start,
        "to": end,
        "traces": sum(row[2] for row in groups),
        "no_trade": sum(reason["count"] for reason in reasons),
        "reasons": reasons,
        "decisions": {"count": decision_count, "results": decisions, "limit": decisions_limit,
                      "truncated": decision_count > len(decisions)},
        "retained_from": kept_from,
        "complete": start >= kept_from,
    }
