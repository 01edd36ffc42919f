"""Reads of traces shared by the API, the admin panels and the supervisor."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

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
    *, bot_id: int, kind: str | None = None, since: datetime | None = None, context: str | None = None
) -> QuerySet[TickTrace]:
    queryset = TickTrace.objects.filter(bot_id=bot_id)
    if kind:
        queryset = queryset.filter(kind=kind)
    if since:
        queryset = queryset.filter(bar_ts__gte=since)
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
