"""The trace store's days: partitions created ahead by beat, whole days dropped past retention, no trace refused."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from controlplane import tenancy
from controlplane.models import AuditEvent
from traces.models import TickTrace
from traces.partitions import partition_name, trace_partition_days, trace_partitions_maintain
from traces.tasks import maintain_partitions
from traces.writer import TraceRow, write_traces

pytestmark = pytest.mark.django_db


def on_day(day, bot_id=1, minute=0):
    bar = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute)
    return TraceRow(
        kind="no_trade", bot_id=bot_id, instrument="BTC-USD", timeframe="1m", bar_ts=bar, reason_code="NO_SIGNAL"
    )


def partition_of(trace_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM traces_ticktrace WHERE id = %s", [trace_id])
        return cursor.fetchone()[0]


def committed_writes():
    """What a commit does to the writes of this test's one transaction: their deferred foreign-key checks run.
    Postgres refuses to move or drop a partition with checks still pending; the tick's writes commit first."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_the_migrated_table_is_partitioned_by_bar_day_with_a_forced_policy_on_each_partition():
    # The migration made today and the seven days after it as of when it ran; a run that crosses midnight migrated
    # "yesterday", so what always holds is today and the six days after it (asking for today + 7 failed then).
    today = timezone.now().date()
    days = trace_partition_days()
    assert {today + timedelta(days=n) for n in range(7)} <= set(days)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity AND c.relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'traces_ticktrace'::regclass"
        )
        partitions = cursor.fetchall()
        cursor.execute("SELECT pg_get_partkeydef('traces_ticktrace'::regclass)")
        assert cursor.fetchone()[0] == "RANGE (bar_ts)"
    assert "traces_ticktrace_default" in {name for name, _, _ in partitions}
    assert all(forced and policy for _, forced, policy in partitions)


def test_beat_runs_the_maintenance_and_creates_the_days_ahead():
    assert settings.CELERY_BEAT_SCHEDULE["traces-maintain-partitions"]["task"] == "traces.maintain_partitions"
    today = timezone.now().date()
    far = today + timedelta(days=settings.TRACE_PARTITIONS_AHEAD_DAYS + 3)
    assert far not in trace_partition_days()
    result = trace_partitions_maintain(ahead_days=settings.TRACE_PARTITIONS_AHEAD_DAYS + 3)
    assert result.created[-1] == far and far in trace_partition_days()
    event = AuditEvent.unscoped.get(action="traces.partitions_maintained")
    assert event.tenant_id is None and far.isoformat() in event.after_state["created"]
    assert maintain_partitions() == {"created": [], "dropped": []}  # a second run finds nothing to do
    assert AuditEvent.unscoped.filter(action="traces.partitions_maintained").count() == 1


def test_a_trace_for_a_day_without_a_partition_lands_and_moves_in_when_its_day_is_created(tenant_a):
    future = timezone.now().date() + timedelta(days=20)
    with tenancy.tenant_context(tenant_a.id):
        assert write_traces([on_day(future)]) == 1
        trace = TickTrace.objects.get()
        assert partition_of(trace.id) == "traces_ticktrace_default"
    committed_writes()
    trace_partitions_maintain(ahead_days=20)
    with tenancy.tenant_context(tenant_a.id):
        assert partition_of(trace.id) == partition_name(future)
        assert TickTrace.objects.get().id == trace.id
        assert write_traces([on_day(future)]) == 0  # the one-per-bar constraint holds in the new day too


def test_days_past_retention_are_dropped_whole_and_audited(tenant_a):
    today = timezone.now().date()
    old, kept = today - timedelta(days=34), today - timedelta(days=29)
    with tenancy.tenant_context(tenant_a.id):
        write_traces([on_day(old), on_day(old, minute=1), on_day(kept)])
    committed_writes()
    result = trace_partitions_maintain(retention_days=30)
    dropped = [row["day"] for row in result.dropped]
    assert old in dropped and kept not in dropped
    assert all(day < today - timedelta(days=30) for day in dropped)
    assert old not in trace_partition_days() and kept in trace_partition_days()
    with tenancy.tenant_context(tenant_a.id):
        assert list(TickTrace.objects.values_list("bar_ts", flat=True)) == [on_day(kept).bar_ts]
    event = AuditEvent.unscoped.get(action="traces.partitions_maintained")
    assert partition_name(old) in [row["partition"] for row in event.after_state["dropped"]]
    assert event.after_state["retention_days"] == 30


def test_the_store_refuses_to_drop_today():
    with pytest.raises(ValueError):
        trace_partitions_maintain(retention_days=0)
    with pytest.raises(Exception, match="refusing to drop"), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM traces_ticktrace_drop_days_before(current_date + 1)")


def test_the_default_partition_keeps_old_bars_of_backtests(tenant_a):
    """Bars older than any day partition (a backtest over last year) go to the default, which no drop touches."""
    last_year = timezone.now().date() - timedelta(days=365)
    with tenancy.tenant_context(tenant_a.id):
        write_traces([on_day(last_year)])
    committed_writes()
    trace_partitions_maintain(retention_days=1)
    with tenancy.tenant_context(tenant_a.id):
        assert TickTrace.objects.filter(bar_ts=on_day(last_year).bar_ts).exists()
