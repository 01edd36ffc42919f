"""The tick-trace changelist: its timeframe and bar-time filters narrow the list and run no query of their own
(bench/observatory_pages.py measures the page at a million traces)."""

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from controlplane import tenancy
from traces.writer import TraceRow, write_traces

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def console(owner_a, tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        write_traces(
            [
                TraceRow(
                    kind="no_trade",
                    bot_id=bot,
                    instrument="ESZ6",
                    timeframe=timeframe,
                    bar_ts=T0 + timedelta(hours=hour),
                    reason_code="NO_SIGNAL",
                )
                for bot, timeframe, hour in ((1, "1m", 0), (2, "1h", 0), (3, "1m", 5))
            ]
        )
    owner_a.is_staff = True
    owner_a.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(owner_a)
    return client


def shown_bots(response) -> set[int]:
    assert response.status_code == 200
    return {row.bot_id for row in response.context["cl"].result_list}


def test_the_page_reads_no_distinct_values_or_date_range_of_the_traces(console):
    with CaptureQueriesContext(connection) as queries:
        assert shown_bots(console.get("/admin/traces/ticktrace/")) == {1, 2, 3}
    trace_reads = [q["sql"] for q in queries if "traces_ticktrace" in q["sql"]]
    # The page and its count, which stops at the paginator's cap (a LIMIT) instead of counting every trace.
    count, page = sorted(trace_reads, key=lambda sql: not sql.startswith("SELECT COUNT(*)"))
    assert count.startswith("SELECT COUNT(*) FROM (SELECT") and "LIMIT 10001" in count, count
    assert not any("DISTINCT" in sql or "MIN(" in sql or "MAX(" in sql for sql in trace_reads), trace_reads


def test_the_timeframe_typed_in_matches_exactly(console):
    assert shown_bots(console.get("/admin/traces/ticktrace/", {"timeframe": "1m"})) == {1, 3}
    assert shown_bots(console.get("/admin/traces/ticktrace/", {"timeframe": "1"})) == set()


def test_bar_time_from_and_to(console):
    response = console.get(
        "/admin/traces/ticktrace/",
        {
            "bar_ts_from_0": "2026-11-02",
            "bar_ts_from_1": "16:00:00",
            "bar_ts_to_0": "2026-11-02",
            "bar_ts_to_1": "21:00:00",
        },
    )
    assert shown_bots(response) == {3}


def test_a_trace_names_its_bot_and_intent_as_links_to_their_pages(console, tenant_a):
    from traces.models import TickTrace

    with tenancy.tenant_context(tenant_a.id):
        write_traces(
            [
                TraceRow(
                    kind="decision",
                    bot_id=7,
                    instrument="ESZ6",
                    timeframe="1m",
                    bar_ts=T0 + timedelta(hours=9),
                    intent_id=42,
                )
            ]
        )
        trace = TickTrace.objects.get(bot_id=7)
    listing = console.get("/admin/traces/ticktrace/").content.decode()
    assert '<a href="/admin/bots/bot/7/change/">7</a>' in listing
    assert '<a href="/admin/execution/tradeintent/42/change/">42</a>' in listing
    page = console.get(f"/admin/traces/ticktrace/{trace.pk}/change/").content.decode()
    assert '<a href="/admin/bots/bot/7/change/">7</a>' in page
    assert '<a href="/admin/execution/tradeintent/42/change/">42</a>' in page
