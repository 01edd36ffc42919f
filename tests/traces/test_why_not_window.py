"""Why didn't bot X trade between t1 and t2: the window's reasons, runs and decisions, over the API and the selector."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from bots import services as bot_services
from controlplane import tenancy
from execution.models import Instrument
from execution.tick.batches import run_tick_batch
from tests.execution.helpers import store_bars
from traces.models import TickTrace
from traces.selectors import why_not_window
from traces.writer import TraceRow, write_traces

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def make_bot(tenant, owner, name="trend", instruments=("BTC-USD",)):
    with tenancy.tenant_context(tenant.id):
        return bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 4, "size": 1},
            instruments=list(instruments),
        )


def row(bot_id, minute, reason=None, *, instrument="BTC-USD", intent_id=None, context="tick", run_ref=None):
    kind = "no_trade" if reason else "decision"
    return TraceRow(
        kind=kind,
        bot_id=bot_id,
        instrument=instrument,
        timeframe="1m",
        bar_ts=T0 + minute * MINUTE,
        reason_code=reason,
        intent_id=intent_id,
        context=context,
        run_ref=run_ref,
        trace_id=f"t-{minute}",
    )


def window_url(bot, start_minute, end_minute):
    start, end = T0 + start_minute * MINUTE, T0 + end_minute * MINUTE
    return (
        f"/api/bots/{bot.id}/why-not?from={start.isoformat().replace('+00:00', 'Z')}"
        f"&to={end.isoformat().replace('+00:00', 'Z')}"
    )


@pytest.fixture
def known_traces(tenant_a, owner_a):
    """Minutes 0-14 of one bot: 3 NO_SIGNAL, a decision, 5 NO_SIGNAL, 2 MARKET_CLOSED, a decision, 1 NO_SIGNAL, then
    two traces outside [0, 13); beside them a replay of the same bars and another bot, neither of which counts."""
    bot, other = make_bot(tenant_a, owner_a), make_bot(tenant_a, owner_a, "other")
    reasons = ["NO_SIGNAL"] * 3 + [None] + ["NO_SIGNAL"] * 5 + ["MARKET_CLOSED"] * 2 + [None] + ["NO_SIGNAL"] * 3
    intents = {3: 31, 11: 32}
    with tenancy.tenant_context(tenant_a.id):
        write_traces([row(bot.id, m, reason, intent_id=intents.get(m)) for m, reason in enumerate(reasons)])
        write_traces([row(bot.id, m, "KILLED", context="replay", run_ref=7) for m in range(14)])
        write_traces([row(other.id, m, "RISK_BLOCKED") for m in range(14)])
    return bot


def test_the_window_counts_each_reason_with_first_last_and_longest_run(known_traces, tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        answer = why_not_window(bot_id=known_traces.id, start=T0, end=T0 + 13 * MINUTE)
    assert (answer["traces"], answer["no_trade"]) == (13, 11)
    by_reason = {reason["reason_code"]: reason for reason in answer["reasons"]}
    assert set(by_reason) == {"NO_SIGNAL", "MARKET_CLOSED"}
    no_signal = by_reason["NO_SIGNAL"]
    assert (no_signal["count"], no_signal["first"], no_signal["last"]) == (9, T0, T0 + 12 * MINUTE)
    assert no_signal["longest_run"] == {
        "length": 5,
        "start": T0 + 4 * MINUTE,
        "end": T0 + 8 * MINUTE,
        "instrument": "BTC-USD",
    }
    closed = by_reason["MARKET_CLOSED"]
    assert (closed["count"], closed["longest_run"]["length"], closed["longest_run"]["start"]) == (2, 2, T0 + 9 * MINUTE)
    decisions = answer["decisions"]
    assert (decisions["count"], decisions["truncated"]) == (2, False)
    assert [(d["bar_ts"], d["intent_id"]) for d in decisions["results"]] == [
        (T0 + 3 * MINUTE, 31),
        (T0 + 11 * MINUTE, 32),
    ]


def test_a_run_is_cut_by_the_window_and_decisions_beyond_the_limit_are_counted(known_traces, tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        answer = why_not_window(bot_id=known_traces.id, start=T0 + 6 * MINUTE, end=T0 + 20 * MINUTE, decisions_limit=0)
    no_signal = next(r for r in answer["reasons"] if r["reason_code"] == "NO_SIGNAL")
    assert (no_signal["count"], no_signal["longest_run"]["length"]) == (6, 3)
    assert answer["decisions"] == {"count": 1, "results": [], "limit": 0, "truncated": True}


def test_runs_are_per_instrument_of_a_bot_on_two(tenant_a, owner_a):
    bot = make_bot(tenant_a, owner_a, instruments=("BTC-USD", "ETH-USD"))
    with tenancy.tenant_context(tenant_a.id):
        write_traces(
            [row(bot.id, m, "NO_SIGNAL") for m in range(4)]
            + [row(bot.id, m, "DATA_STALE" if m != 2 else "NO_SIGNAL", instrument="ETH-USD") for m in range(4)]
        )
        answer = why_not_window(bot_id=bot.id, start=T0, end=T0 + 4 * MINUTE)
    by_reason = {reason["reason_code"]: reason for reason in answer["reasons"]}
    assert by_reason["NO_SIGNAL"]["count"] == 5
    assert by_reason["NO_SIGNAL"]["longest_run"]["length"] == 4
    assert by_reason["NO_SIGNAL"]["longest_run"]["instrument"] == "BTC-USD"
    assert by_reason["DATA_STALE"]["longest_run"]["length"] == 2


def test_why_not_with_from_and_to_answers_the_window_beside_the_verdict(known_traces, api_viewer_a, settings):
    """Regression: on main ``?from=&to=`` was ignored and only the latest verdict came back."""
    settings.TRACE_RETENTION_DAYS = 10
    body = api_viewer_a.get(window_url(known_traces, 0, 13)).json()
    assert (body["ticked"], body["reason_code"]) == (True, "NO_SIGNAL")  # today's verdict, unchanged
    window = body["window"]
    assert (window["traces"], window["no_trade"], window["decisions"]["count"]) == (13, 11, 2)
    no_signal = next(r for r in window["reasons"] if r["reason_code"] == "NO_SIGNAL")
    assert no_signal["longest_run"]["length"] == 5
    assert no_signal["longest_run"]["start"] == "2026-11-02T14:04:00Z"
    assert [d["intent_id"] for d in window["decisions"]["results"]] == [31, 32]
    # The window starts before the retention's first kept day, so its zeros there would not be facts.
    assert window["complete"] is False
    assert window["retained_from"] == (timezone.now() - timedelta(days=10)).strftime("%Y-%m-%dT00:00:00Z")


def test_why_not_without_a_window_keeps_answering_the_verdict_only(known_traces, api_viewer_a):
    body = api_viewer_a.get(f"/api/bots/{known_traces.id}/why-not").json()
    assert "window" not in body and body["reason_code"] == "NO_SIGNAL"


def test_a_window_of_a_bot_that_never_ticked_says_zero_traces(tenant_a, owner_a, api_viewer_a):
    bot = make_bot(tenant_a, owner_a)
    body = api_viewer_a.get(window_url(bot, 0, 60)).json()
    assert body["ticked"] is False
    assert (body["window"]["traces"], body["window"]["reasons"]) == (0, [])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday&to=2026-11-02T15:00:00Z", "from"),
        ("from=2026-11-02T14:00:00Z&to=not-a-time", "to"),
        ("from=2026-11-02T15:00:00Z&to=2026-11-02T15:00:00Z", "to"),
        ("from=2026-11-02T16:00:00Z&to=2026-11-02T15:00:00Z", "to"),
        ("from=2026-08-01T00:00:00Z&to=2026-11-02T00:00:00Z", "to"),
        ("to=2026-11-02T15:00:00Z", "from"),
    ],
)
def test_a_bad_window_is_a_validation_error_naming_the_field(known_traces, api_viewer_a, query, field):
    response = api_viewer_a.get(f"/api/bots/{known_traces.id}/why-not?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert list(body["details"]) == [field]


def test_from_alone_runs_to_now(known_traces, api_viewer_a):
    start = timezone.now() - timedelta(days=1)
    body = api_viewer_a.get(f"/api/bots/{known_traces.id}/why-not", {"from": start.isoformat()}).json()
    assert body["window"]["traces"] == 0
    assert body["window"]["complete"] is True


def test_traces_until_excludes_later_bars(known_traces, api_viewer_a):
    """Regression: on main ``until`` was ignored and every bar came back."""
    url = f"/api/bots/{known_traces.id}/traces?context=tick&since=2026-11-02T14:02:00Z&until=2026-11-02T14:05:00Z"
    results = api_viewer_a.get(url).json()["results"]
    assert [r["bar_ts"] for r in results] == ["2026-11-02T14:04:00Z", "2026-11-02T14:03:00Z", "2026-11-02T14:02:00Z"]
    bad = api_viewer_a.get(
        f"/api/bots/{known_traces.id}/traces?since=2026-11-02T14:05:00Z&until=2026-11-02T14:05:00Z"
    ).json()
    assert bad["error_code"] == "VALIDATION_ERROR" and list(bad["details"]) == ["until"]


def test_the_window_is_tenant_scoped(known_traces, api_owner_b, tenant_b):
    assert api_owner_b.get(window_url(known_traces, 0, 13)).status_code == 404
    with tenancy.tenant_context(tenant_b.id):
        assert why_not_window(bot_id=known_traces.id, start=T0, end=T0 + 13 * MINUTE)["traces"] == 0


def _reference_window(traces):
    """The same figures computed in Python from the rows, to check the SQL against on real ticks."""
    counts, runs, decisions = {}, {}, []
    previous, length, run_start = None, 0, None
    for trace in traces:
        if trace.kind == "decision":
            decisions.append((trace.bar_ts, trace.intent_id))
        if previous is not None and trace.reason_code == previous.reason_code:
            length += 1
        else:
            length, run_start = 1, trace.bar_ts
        if trace.reason_code:
            counts[trace.reason_code] = counts.get(trace.reason_code, 0) + 1
            if length > runs.get(trace.reason_code, (0,))[0]:
                runs[trace.reason_code] = (length, run_start, trace.bar_ts)
        previous = trace
    return counts, runs, decisions


def test_the_window_after_real_ticks_matches_the_traces_they_wrote(tenant_a, owner_a, api_viewer_a):
    btc = Instrument.objects.get(symbol="BTC-USD")
    store_bars(btc, T0, 12)
    bot = make_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
    for minute in [*range(5, 13), *range(40, 44)]:  # warm-up, a trade, holding, then the bars run out
        run_tick_batch(instrument=btc, timeframe="1m", as_of=T0 + minute * MINUTE, sync_oms=True)
    with tenancy.tenant_context(tenant_a.id):
        written = list(TickTrace.objects.filter(bot_id=bot.id, context="tick").order_by("bar_ts"))
    counts, runs, decisions = _reference_window(written)
    assert decisions and "DATA_STALE" in counts  # the ticks traded once and then went stale
    window = api_viewer_a.get(window_url(bot, 0, 60)).json()["window"]
    assert window["traces"] == len(written)
    assert {r["reason_code"]: r["count"] for r in window["reasons"]} == counts
    for reason in window["reasons"]:
        length, start, end = runs[reason["reason_code"]]
        assert reason["longest_run"]["length"] == length
        assert reason["longest_run"]["start"] == start.isoformat().replace("+00:00", "Z")
        assert reason["longest_run"]["end"] == end.isoformat().replace("+00:00", "Z")
    assert [(d["bar_ts"], d["intent_id"]) for d in window["decisions"]["results"]] == [
        (ts.isoformat().replace("+00:00", "Z"), intent) for ts, intent in decisions
    ]


def _since_as_main_computed_it(bot_id):
    """The verdict's "since" as main computed it, trace by trace through the ORM: the reference for the SQL."""
    ticks = TickTrace.objects.filter(bot_id=bot_id, context="tick")
    latest = ticks.order_by("-bar_ts", "-id").first()
    last_different = (
        ticks.filter(bar_ts__lt=latest.bar_ts)
        .exclude(kind="no_trade", reason_code=latest.reason_code)
        .order_by("-bar_ts")
        .values_list("bar_ts", flat=True)
        .first()
    )
    held = ticks.filter(kind="no_trade", reason_code=latest.reason_code)
    if last_different is not None:
        held = held.filter(bar_ts__gt=last_different)
    return held.order_by("bar_ts").values_list("bar_ts", flat=True).first()


@pytest.mark.parametrize("layout", ["one instrument", "two instruments", "never different"])
def test_the_verdicts_since_is_what_main_computed(tenant_a, owner_a, layout):
    bot = make_bot(tenant_a, owner_a, instruments=("BTC-USD", "ETH-USD"))
    reasons = ["NO_SIGNAL", "DATA_STALE", None, "DATA_STALE", "DATA_STALE", "NO_SIGNAL", "DATA_STALE", "DATA_STALE"]
    rows = [row(bot.id, m, reason) for m, reason in enumerate(reasons)]
    if layout == "two instruments":
        rows += [row(bot.id, m, "DATA_STALE" if m != 6 else "KILLED", instrument="ETH-USD") for m in range(2, 9)]
    if layout == "never different":
        rows = [row(bot.id, m, "DATA_STALE") for m in range(5)]
    with tenancy.tenant_context(tenant_a.id):
        write_traces(rows)
        write_traces([row(bot.id, m, "NO_SIGNAL", context="replay", run_ref=1) for m in range(9)])
        from traces.selectors import why_not

        expected = _since_as_main_computed_it(bot.id)
        assert why_not(bot_id=bot.id)["since"] == expected
    assert (
        expected
        == {"one instrument": T0 + 6 * MINUTE, "two instruments": T0 + 7 * MINUTE, "never different": T0}[layout]
    )
