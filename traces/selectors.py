"""Reads of traces shared by the API, the admin panels and the supervisor."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from controlplane.tenancy import require_tenant_id
from traces.models import ReasonCode, TickTrace, TraceDaySummary
from traces.summaries import runs_sql

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
    ReasonCode.RETIRED: "Nothing: a retired bot stays retired; stop its runner, or create a new bot.",
    ReasonCode.INTEGRATION_MISSING: "Entering and verifying the missing keys (GET /api/integrations/keys-needed).",
    ReasonCode.RECONCILE_MISMATCH: "A reconcile showing positions agree, or an operator's decision about them.",
    ReasonCode.COOLDOWN: "The cooldown elapsing (see details.until).",
    ReasonCode.TICK_LATE: "The tick workers keeping up (see details: as_of, started_at, lateness and the allowed "
    "lateness, TICK_MAX_LATENESS_SECONDS): add workers on the ticks queue or find what holds them.",
    ReasonCode.TICK_ERROR: "Fixing the error in details.error_code (see the log by trace_id); the circuit breaker "
    "kills the bot after repeated errors.",
}


def bot_traces(
    *,
    bot_id: int,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
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


# Since when the latest reason has held: the first trace with that reason after the last trace (before the latest)
# without it. Both are maxima and minima over the bot's traces, so they are taken per instrument and combined: per
# instrument the one-per-bar index holds kind and reason (INCLUDE) in bar order, so each is a short index-only walk
# from the latest bar back, instead of a heap fetch per trace of the run.
_SINCE_SQL = """
WITH RECURSIVE instruments AS (
    (SELECT instrument FROM traces_ticktrace
     WHERE tenant_id = %(tenant_id)s AND bot_id = %(bot_id)s AND context = 'tick'
     ORDER BY instrument LIMIT 1)
    UNION ALL
    SELECT (SELECT t.instrument FROM traces_ticktrace t
            WHERE t.tenant_id = %(tenant_id)s AND t.bot_id = %(bot_id)s AND t.instrument > i.instrument
              AND t.context = 'tick'
            ORDER BY t.instrument LIMIT 1)
    FROM instruments i WHERE i.instrument IS NOT NULL
), last_different AS (
    SELECT max(d.bar_ts) AS bar_ts
    FROM instruments i CROSS JOIN LATERAL (
        SELECT bar_ts FROM traces_ticktrace t
        WHERE t.tenant_id = %(tenant_id)s AND t.bot_id = %(bot_id)s AND t.instrument = i.instrument
          AND t.context = 'tick' AND t.bar_ts < %(latest)s
          AND (t.kind <> 'no_trade' OR t.reason_code IS DISTINCT FROM %(reason)s)
        ORDER BY t.bar_ts DESC LIMIT 1
    ) d
    WHERE i.instrument IS NOT NULL
)
SELECT min(h.bar_ts)
FROM instruments i CROSS JOIN LATERAL (
    SELECT bar_ts FROM traces_ticktrace t
    WHERE t.tenant_id = %(tenant_id)s AND t.bot_id = %(bot_id)s AND t.instrument = i.instrument
      AND t.context = 'tick' AND t.kind = 'no_trade' AND t.reason_code = %(reason)s
      AND t.bar_ts > coalesce((SELECT bar_ts FROM last_different), '-infinity')
    ORDER BY t.bar_ts LIMIT 1
) h
WHERE i.instrument IS NOT NULL
"""


# Postgres compiles a query with JIT once its estimated cost passes jit_above_cost; over every partition of the
# trace store these estimates are large while the work is small, and the compile (about 900 functions, 290 ms on
# the bench machine) cost ten times the query. Off for the transaction of these reads only.
_NO_JIT = "SELECT set_config('jit', 'off', true)"


def why_not(*, bot_id: int) -> dict | None:
    """The latest live/paper tick's verdict; for a no-trade, since when its reason has held and what would change it.

    None when the bot has never ticked: the caller must say so rather than invent an answer.
    """
    ticks = TickTrace.objects.filter(bot_id=bot_id, context=TickTrace.Context.TICK)
    latest = ticks.order_by("-bar_ts", "-id").first()
    if latest is None:
        return None
    if latest.kind == TickTrace.Kind.DECISION:
        return {
            "trading": True,
            "reason_code": None,
            "since": latest.bar_ts,
            "latest_trace_id": latest.id,
            "latest_bar_ts": latest.bar_ts,
            "details": {},
            "what_would_change_it": None,
            "trace_id": latest.trace_id,
        }
    with connection.cursor() as cursor:
        cursor.execute(_NO_JIT)
        cursor.execute(
            _SINCE_SQL,
            {"tenant_id": latest.tenant_id, "bot_id": bot_id, "latest": latest.bar_ts, "reason": latest.reason_code},
        )
        since = cursor.fetchone()[0]
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


# The window in one statement: the runs of the traces in the window's parts no day summary covers (its first and
# last, partly covered days; every day when none is summarized), each part's runs apart (``segment``), with the
# stored runs of the summarized days between them; then runs that meet across a part's edge or midnight with the
# same reason are stitched into one (a run starts a group when the previous run of the instrument has another
# reason, or is a decision), and each reason's count, first, last and longest run are taken.
_WINDOW_RUNS_SQL = f"""
WITH raw AS ({
    runs_sql(
        "bot_id = %(bot_id)s AND ((bar_ts >= %(start)s AND bar_ts < %(covered_from)s) "
        "OR (bar_ts >= %(covered_to)s AND bar_ts < %(end)s))",
        segment="(bar_ts >= %(covered_to)s)",
    )
}
), all_runs AS (
    SELECT instrument, kind, reason_code, intent_id, run_start, run_end, run_length FROM raw
    UNION ALL
    SELECT instrument, kind, reason_code, intent_id, run_start, run_end, length
    FROM traces_tracedayrun
    WHERE tenant_id = %(tenant_id)s AND bot_id = %(bot_id)s
      AND day >= %(covered_from_day)s AND day < %(covered_to_day)s
), marked AS (
    SELECT *, (reason_code IS NULL
               OR lag(reason_code, 1, '') OVER by_start IS DISTINCT FROM reason_code)::int AS starts_group
    FROM all_runs
    WINDOW by_start AS (PARTITION BY instrument ORDER BY run_start)
), grouped AS (
    SELECT *, sum(starts_group) OVER (PARTITION BY instrument ORDER BY run_start ROWS UNBOUNDED PRECEDING) AS grp
    FROM marked
), runs AS (
    SELECT instrument, min(kind) AS kind, min(reason_code) AS reason_code, min(intent_id) AS intent_id,
           min(run_start) AS run_start, max(run_end) AS run_end, sum(run_length) AS run_length
    FROM grouped
    GROUP BY instrument, grp
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
GROUP BY kind, reason_code
ORDER BY count DESC, reason_code
"""


def _covered_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The longest stretch of whole days inside [start, end) whose runs are stored, as [first, last + 1)."""
    first = (start + timedelta(days=1) - timedelta(microseconds=1)).date()  # the first whole day
    first = max(first, retained_from().date())  # a summary outliving its dropped day is not read
    last = end.date()  # the first day not whole inside the window
    days = list(
        TraceDaySummary.objects.filter(day__gte=first, day__lt=last).order_by("day").values_list("day", flat=True)
    )
    best, current = None, None
    for day in days:
        current = (
            (current[0], day + timedelta(days=1)) if current and current[1] == day else (day, day + timedelta(days=1))
        )
        if best is None or (current[1] - current[0]) > (best[1] - best[0]):
            best = current
    return best


WINDOW_DECISIONS_LIMIT = 100


def retained_from(now: datetime | None = None) -> datetime:
    """The earliest bar the trace store still holds for certain: partitions of days before it are dropped
    (traces.partitions), so a window starting earlier cannot be answered in full."""
    now = now or timezone.now()
    day = (now - timedelta(days=settings.TRACE_RETENTION_DAYS)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def why_not_window(
    *,
    bot_id: int,
    start: datetime,
    end: datetime,
    decisions_limit: int = WINDOW_DECISIONS_LIMIT,
    use_summaries: bool = True,
) -> dict:
    """Why the bot did (not) trade over [start, end): per no-trade reason its count, first and last bar and
    longest run; the decisions taken (their count, and the first ``decisions_limit`` with bar, instrument and
    intent; the bot page links a decision's trace by its bar).

    Live/paper ticks only (replays and backtests are not what the bot did). A run is consecutive traces of one
    instrument with the same reason, ended by a trace with another reason or a decision; a gap in ticking (the
    runner stopped) does not end a run, since no trace says anything happened in between. Two statements whatever
    the window's size: the summarized days (traces.summaries) it covers, and _WINDOW_RUNS_SQL; the tenant is
    filtered here as well as by RLS (two locks).
    """
    covered = _covered_days(start, end) if use_summaries else None  # False: every trace (a check, the bench)
    if covered:
        covered_from = datetime(covered[0].year, covered[0].month, covered[0].day, tzinfo=UTC)
        covered_to = datetime(covered[1].year, covered[1].month, covered[1].day, tzinfo=UTC)
    else:
        covered_from = covered_to = end
    params = {
        "tenant_id": require_tenant_id(),
        "bot_id": bot_id,
        "start": start,
        "end": end,
        "covered_from": covered_from,
        "covered_to": covered_to,
        "covered_from_day": covered_from.date(),
        "covered_to_day": covered_to.date() if covered else covered_from.date(),
        "limit": decisions_limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_NO_JIT)
        cursor.execute(_WINDOW_RUNS_SQL, params)
        groups = cursor.fetchall()
    decision_count, decisions = 0, []
    for kind, _, count, *_, bars, instruments, intents in groups:
        if kind == TickTrace.Kind.DECISION:
            decision_count = count
            decisions = [
                {"bar_ts": bar, "instrument": instrument, "intent_id": intent}
                for bar, instrument, intent in zip(bars or [], instruments or [], intents or [])
            ]
    reasons = [
        {
            "reason_code": reason,
            "count": count,
            "first": first,
            "last": last,
            "longest_run": {"length": length, "start": run_start, "end": run_end, "instrument": instrument},
        }
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
        "decisions": {
            "count": decision_count,
            "results": decisions,
            "limit": decisions_limit,
            "truncated": decision_count > len(decisions),
        },
        "retained_from": kept_from,
        "complete": start >= kept_from,
    }
