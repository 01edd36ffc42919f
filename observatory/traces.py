"""The trace explorer's read: everything recorded under one trace id, in time order.

A trace id names one request or one task (and the tasks it enqueued). The request or task itself leaves no row
of its own; what it did does: audit events, provider calls (usage events and verifications), tick batches and
their traces, intents, orders and fills, jobs, runners, reconciliations, kill cancellations, risk incidents and
backtests. Errors show on the rows that carry them (an error code, a failed status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.urls import NoReverseMatch, reverse

from backtests.models import BacktestMatrix, BacktestRun
from bots.models import Bot, CancelRequest, Job, Reconciliation, Runner
from controlplane.models import AuditEvent
from execution.models import Fill, Order, RiskIncident, TickBatch, TradeIntent
from bots.timeframes import timeframe_delta
from integrations.models import IntegrationUsageEvent, IntegrationVerification
from traces.models import TickTrace

ROWS_PER_KIND = 500


@dataclass(frozen=True)
class TraceRow:
    at: datetime | None
    kind: str
    summary: str
    url: str | None
    problem: str  # an error code or failed status, "" when none
    bot_id: int | None


# (label, queryset of rows with the trace id, the time field that orders them)
def _sources(trace_id: str) -> list[tuple[str, QuerySet, str]]:
    return [
        ("audit event", AuditEvent.unscoped.filter(trace_id=trace_id), "created_at"),
        ("provider call", IntegrationUsageEvent.objects.filter(trace_id=trace_id), "created_at"),
        ("verification", IntegrationVerification.objects.filter(trace_id=trace_id), "verified_at"),
        ("tick batch", TickBatch.objects.filter(trace_id=trace_id), "recorded_at"),
        ("intent", TradeIntent.objects.filter(trace_id=trace_id), "created_at"),
        ("order", Order.objects.filter(trace_id=trace_id), "created_at"),
        ("fill", Fill.objects.filter(trace_id=trace_id), "created_at"),
        ("job", Job.objects.filter(trace_id=trace_id), "created_at"),
        ("runner", Runner.objects.filter(trace_id=trace_id), "started_at"),
        ("reconciliation", Reconciliation.objects.filter(trace_id=trace_id), "created_at"),
        ("cancel request", CancelRequest.objects.filter(trace_id=trace_id), "created_at"),
        ("risk incident", RiskIncident.objects.filter(trace_id=trace_id), "opened_at"),
        ("backtest", BacktestRun.objects.filter(trace_id=trace_id), "created_at"),
        ("matrix", BacktestMatrix.objects.filter(trace_id=trace_id), "created_at"),
    ]


def _tick_traces(trace_id: str, batches: list[TickBatch]) -> QuerySet:
    """The tick traces a tick batch wrote under this trace id, read through the per-bot index (the trace table
    has no trace id index: every index there is paid on each of the tick's inserts)."""
    bot_ids = list(Bot.objects.values_list("id", flat=True))
    matched = TickTrace.objects.none()
    for batch in batches:
        matched = matched | TickTrace.objects.filter(
            bot_id__in=bot_ids,
            instrument=batch.instrument_symbol,
            timeframe=batch.timeframe,
            bar_ts=batch.as_of - timeframe_delta(batch.timeframe),
            trace_id=trace_id,
        )
    return matched


def _admin_url(obj: Model) -> str | None:
    if not admin.site.is_registered(type(obj)):
        return None
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def _problem(obj: Model) -> str:
    code = getattr(obj, "error_code", "") or ""
    status = str(getattr(obj, "status", "") or "")
    if code:
        return code
    return status if status.lower() in {"failed", "error", "rejected", "circuit_open", "mismatch"} else ""


def _bot_id(obj: Model) -> int | None:
    return getattr(obj, "bot_id", None)


def trace_timeline(trace_id: str) -> dict:
    rows: list[TraceRow] = []
    counts: dict[str, int] = {}
    batches: list[TickBatch] = []
    for label, queryset, time_field in _sources(trace_id):
        found = list(queryset.order_by(time_field)[: ROWS_PER_KIND + 1])
        if label == "tick batch":
            batches = found
        counts[label] = len(found)
        for obj in found[:ROWS_PER_KIND]:
            rows.append(
                TraceRow(getattr(obj, time_field), label, str(obj), _admin_url(obj), _problem(obj), _bot_id(obj))
            )
    if batches:
        traces = list(_tick_traces(trace_id, batches).order_by("bar_ts", "bot_id")[: ROWS_PER_KIND + 1])
        counts["tick trace"] = len(traces)
        for trace in traces[:ROWS_PER_KIND]:
            rows.append(
                TraceRow(
                    trace.created_at,
                    "tick trace",
                    str(trace),
                    _admin_url(trace),
                    trace.reason_code if trace.reason_code == "TICK_ERROR" else "",
                    trace.bot_id,
                )
            )
    rows.sort(key=lambda row: (row.at is None, row.at))
    return {
        "rows": rows,
        "counts": {label: n for label, n in counts.items() if n},
        "truncated": sorted(label for label, n in counts.items() if n > ROWS_PER_KIND),
        "limit": ROWS_PER_KIND,
    }
