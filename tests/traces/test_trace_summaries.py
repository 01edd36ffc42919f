"""Runs of closed days: a window read through day summaries answers exactly what the traces say."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from controlplane import tenancy
from traces.models import TickTrace, TraceDayRun, TraceDaySummary
from traces.selectors import why_not_window
from traces.summaries import trace_day_summarize, trace_days_summarize_closed
from traces.tasks import summarize_closed_days
from traces.writer import TraceRow, write_traces

pytestmark = pytest.mark.django_db

DAY0 = datetime(2026, 11, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def trace(minute, reason=None, *, bot_id=1, instrument="BTC-USD"):
    return TraceRow(
        kind="no_trade" if reason else "decision",
        bot_id=bot_id,
        instrument=instrument,
        timeframe="1m",
        bar_ts=DAY0 + minute * MINUTE,
        reason_code=reason,
        intent_id=None if reason else 900 + minute,
    )


def pattern():
    """Three days, a trace every 10 minutes: NO_SIGNAL across the first midnight, a decision on day 1, DATA_STALE
    across the second midnight, and a second instrument whose runs must not join the first's."""
    rows = []
    for minute in range(0, 3 * 1440, 10):
        if minute < 1440 + 600:
            reason = "NO_SIGNAL" if minute != 1440 + 300 else None
        else:
            reason = "DATA_STALE"
        rows.append(trace(minute, reason))
        rows.append(trace(minute, "MARKET_CLOSED" if minute % 60 else "NO_SIGNAL", instrument="ETH-USD"))
    return rows


def answer(start, end):
    result = why_not_window(bot_id=1, start=start, end=end)
    return {key: result[key] for key in ("traces", "no_trade", "reasons", "decisions")}


@pytest.mark.parametrize(("start_minute", "end_minute"), [(0, 3 * 1440), (95, 3 * 1440 - 35), (700, 2200)])
def test_a_window_through_summaries_equals_the_window_over_traces(tenant_a, start_minute, end_minute):
    start, end = DAY0 + start_minute * MINUTE, DAY0 + end_minute * MINUTE
    with tenancy.tenant_context(tenant_a.id):
        write_traces(pattern())
        from_traces = answer(start, end)
        for day in range(3):
            trace_day_summarize(day=(DAY0 + timedelta(days=day)).date())
        assert TraceDayRun.objects.count() < 3 * 2 * 144 / 4  # runs, not traces
        assert answer(start, end) == from_traces
    no_signal = next(r for r in from_traces["reasons"] if r["reason_code"] == "NO_SIGNAL")
    if start_minute == 0:
        # One run from the first bar to the decision, across midnight: 1440 + 300 minutes, a trace every 10.
        assert no_signal["longest_run"]["length"] == 174
        assert (no_signal["longest_run"]["start"], no_signal["longest_run"]["end"]) == (
            DAY0,
            DAY0 + (1440 + 290) * MINUTE,
        )


def test_a_late_trace_for_a_summarized_day_summarizes_it_again(tenant_a):
    start, end = DAY0, DAY0 + 3 * 1440 * MINUTE
    with tenancy.tenant_context(tenant_a.id):
        write_traces(pattern())
        for day in range(3):
            trace_day_summarize(day=(DAY0 + timedelta(days=day)).date())
        write_traces([trace(1440 + 5, "RISK_BLOCKED")])  # between two traces of day 1, as `tick --at` would
        through_summaries = answer(start, end)
        TraceDayRun.objects.all().delete()
        TraceDaySummary.objects.all().delete()
        assert through_summaries == answer(start, end)
    assert any(r["reason_code"] == "RISK_BLOCKED" for r in through_summaries["reasons"])


def test_beat_summarizes_each_closed_day_once_and_never_today(tenant_a, tenant_b, settings):
    # Noon of today, not the wall clock: run in the last TRACE_SUMMARY_DELAY_MINUTES before midnight, "now + delay"
    # fell on the next day, today counted as closed and the retention window moved by a day (34 days, not 35).
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    with tenancy.tenant_context(tenant_a.id):
        write_traces(
            [
                TraceRow(
                    kind="no_trade",
                    bot_id=1,
                    instrument="BTC-USD",
                    timeframe="1m",
                    bar_ts=yesterday,
                    reason_code="NO_SIGNAL",
                ),
                TraceRow(
                    kind="no_trade",
                    bot_id=1,
                    instrument="BTC-USD",
                    timeframe="1m",
                    bar_ts=now - timedelta(minutes=1),
                    reason_code="NO_SIGNAL",
                ),
            ]
        )
    done = trace_days_summarize_closed(now=now + timedelta(minutes=settings.TRACE_SUMMARY_DELAY_MINUTES))
    assert set(done) == {tenant_a.id, tenant_b.id}
    assert len(done[tenant_a.id]) == settings.TRACE_RETENTION_DAYS
    assert now.date().isoformat() not in done[tenant_a.id]
    with tenancy.tenant_context(tenant_a.id):
        assert TraceDaySummary.objects.get(day=yesterday.date()).runs == 1
        assert not TraceDaySummary.objects.filter(day=now.date()).exists()
    assert summarize_closed_days() == {}  # nothing left to do


def test_a_summary_of_a_day_past_retention_is_not_read(tenant_a, settings):
    """A day's partition is dropped before beat forgets its runs: the window must not count what is gone."""
    end = DAY0 + timedelta(days=1)
    with tenancy.tenant_context(tenant_a.id):
        write_traces(pattern())
        trace_day_summarize(day=DAY0.date())
        TickTrace.objects.filter(bar_ts__lt=end).delete()  # what dropping the day's partition does
        assert why_not_window(bot_id=1, start=DAY0, end=end)["traces"] == 288  # read from the runs
        settings.TRACE_RETENTION_DAYS = (timezone.now() - DAY0).days - 1
        past = why_not_window(bot_id=1, start=DAY0, end=end)
    assert (past["traces"], past["complete"]) == (0, False)
