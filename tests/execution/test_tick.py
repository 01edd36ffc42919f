"""The runner tick end to end on real bars: one trace per bot per tick, idempotent re-runs, no fake prices."""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from bots import services as bot_services
from bots.models import Bot, Runner
from controlplane import tenancy
from execution.models import Fill, Instrument, TickBatch, TradeIntent, TradingControl
from execution.risk.state import risk_snapshot
from execution.tick.batches import run_tick_batch
from execution.tick.replay import run_replay
from tests.execution.helpers import store_bars
from traces.models import TickTrace

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # a Monday; BTC-USD trades 24/7
MINUTE = timedelta(minutes=1)
PARAMS = {"fast": 2, "slow": 4, "size": 1}


@pytest.fixture
def btc():
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_bars(instrument, T0, 12)  # closes rise every minute: fast MA above slow MA, target long 1
    return instrument


def running_bot(tenant, owner, name="trend", instruments=("BTC-USD",), **fields):
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner, name=name, strategy="ma_crossover", parameters=PARAMS, instruments=list(instruments), **fields
        )
        bot_services.runner_start(bot_id=bot.id, actor=owner)
    return bot


def traces(tenant, **filters):
    with tenancy.tenant_context(tenant.id):
        return list(TickTrace.objects.filter(**filters).order_by("bot_id", "bar_ts"))


def tick(instrument, minutes):
    return run_tick_batch(instrument=instrument, timeframe="1m", as_of=T0 + minutes * MINUTE, sync_oms=True)


def test_a_tick_trades_once_and_a_rerun_of_the_same_bar_creates_nothing(btc, tenant_a, owner_a):
    first, second = running_bot(tenant_a, owner_a, "one"), running_bot(tenant_a, owner_a, "two")
    result = tick(btc, 10)
    assert (result.bots, result.decisions, result.intents_created) == (2, 2, 2)
    decided = traces(tenant_a, kind="decision")
    assert [t.bot_id for t in decided] == [first.id, second.id]
    assert all(t.bar_ts == T0 + 9 * MINUTE and t.intent_id for t in decided)
    assert decided[0].signal["target"] == 1 and decided[0].signal["fast_ma"] > decided[0].signal["slow_ma"]

    again = tick(btc, 10)
    assert (again.bots, again.skipped_already_ticked, again.intents_created) == (0, 2, 0)
    with tenancy.tenant_context(tenant_a.id):
        assert TradeIntent.objects.count() == 2
        assert TickTrace.objects.count() == 2


def test_a_bot_on_two_instruments_ticks_each_and_a_rerun_skips_each(btc, tenant_a, owner_a):
    eth = Instrument.objects.get(symbol="ETH-USD")
    store_bars(eth, T0, 12)
    bot = running_bot(tenant_a, owner_a, instruments=("BTC-USD", "ETH-USD"))
    assert (tick(btc, 10).bots, tick(eth, 10).bots) == (1, 1)
    decided = sorted((t.instrument, t.kind, bool(t.intent_id)) for t in traces(tenant_a, bot_id=bot.id))
    assert decided == [("BTC-USD", "decision", True), ("ETH-USD", "decision", True)]
    assert (tick(btc, 10).skipped_already_ticked, tick(eth, 10).skipped_already_ticked) == (1, 1)
    with tenancy.tenant_context(tenant_a.id):
        assert TradeIntent.objects.count() == 2


def _runner(bot) -> Runner:
    with tenancy.tenant_context(bot.tenant_id):
        return Runner.objects.get(bot=bot, status=Runner.Status.RUNNING)


def test_a_rerun_of_an_older_bar_after_newer_ones_still_skips_the_traced_bots(btc, tenant_a, owner_a):
    """A live tick skips its re-run probe of a runner whose newest traced bar is older than the bar it ticks; a
    re-run of an older bar still finds the traces."""
    bot = running_bot(tenant_a, owner_a)
    assert [tick(btc, minutes).bots for minutes in (8, 9, 10)] == [1, 1, 1]
    assert _runner(bot).last_tick_bar_ts == T0 + 9 * MINUTE
    again = tick(btc, 9)
    assert (again.bots, again.skipped_already_ticked) == (0, 1)
    assert len(traces(tenant_a, bot_id=bot.id)) == 3


def test_a_new_runner_of_a_bot_finds_the_bars_an_earlier_runner_traced(btc, tenant_a, owner_a):
    """A runner's first tick looks up the bot's newest trace, whichever runner wrote it: a new runner that ticks an
    older bar first still skips the bar its predecessor traced after it."""
    bot = running_bot(tenant_a, owner_a)
    assert tick(btc, 10).bots == 1
    with tenancy.tenant_context(tenant_a.id):
        bot_services.runner_stop(runner_id=_runner(bot).id, actor=owner_a)
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
    assert _runner(bot).last_tick_bar_ts is None
    assert tick(btc, 9).bots == 1
    assert _runner(bot).last_tick_bar_ts == T0 + 9 * MINUTE  # the predecessor's bar, not the one it ticked
    again = tick(btc, 10)
    assert (again.bots, again.skipped_already_ticked) == (0, 1)


def test_a_restarted_runner_finds_the_bars_another_runner_traced_meanwhile(btc, tenant_a, owner_a):
    """A restart forgets the runner's newest traced bar: another runner of the bot may have ticked since."""
    bot = running_bot(tenant_a, owner_a)
    first = _runner(bot)
    assert tick(btc, 8).bots == 1
    with tenancy.tenant_context(tenant_a.id):
        bot_services.runner_stop(runner_id=first.id, actor=owner_a)
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
    assert (tick(btc, 9).bots, tick(btc, 10).bots) == (1, 1)
    with tenancy.tenant_context(tenant_a.id):
        bot_services.runner_stop(runner_id=_runner(bot).id, actor=owner_a)
        bot_services.runner_restart(runner_id=first.id, actor=owner_a)
    assert _runner(bot).id == first.id and _runner(bot).last_tick_bar_ts is None
    again = tick(btc, 10)
    assert (again.bots, again.skipped_already_ticked) == (0, 1)
    assert tick(btc, 11).bots == 1
    assert len(traces(tenant_a, bot_id=bot.id)) == 4


def test_orders_fill_at_the_next_bars_open_before_the_next_decision(btc, tenant_a, owner_a):
    bot = running_bot(tenant_a, owner_a)
    tick(btc, 10)
    with tenancy.tenant_context(tenant_a.id):
        assert not Fill.objects.exists()
    result = tick(btc, 11)
    with tenancy.tenant_context(tenant_a.id):
        fill = Fill.objects.get()
    assert fill.price == Decimal("110") and fill.quantity == 1  # bar 10 opens at 100 + 10
    assert result.reasons == {"ALREADY_AT_TARGET": 1}
    latest = traces(tenant_a, bot_id=bot.id)[-1]
    assert latest.details == {"target": 1.0, "position": 1.0}


def test_the_same_bars_and_state_give_the_same_decision_and_trace(btc, tenant_a, owner_a, tenant_b, owner_b):
    running_bot(tenant_a, owner_a)
    running_bot(tenant_b, owner_b)
    tick(btc, 10)
    a, b = traces(tenant_a)[0], traces(tenant_b)[0]
    assert (a.kind, a.bar_ts, a.signal, a.inputs, a.risk_checks) == (
        b.kind,
        b.bar_ts,
        b.signal,
        b.inputs,
        b.risk_checks,
    )


def test_stale_bars_are_a_no_trade_never_a_price(btc, tenant_a, owner_a):
    running_bot(tenant_a, owner_a)
    result = tick(btc, 60)
    assert result.data_problem == "DATA_STALE" and result.intents_created == 0
    (trace,) = traces(tenant_a)
    assert (trace.kind, trace.reason_code) == ("no_trade", "DATA_STALE")
    assert trace.details["bar_ts"] == (T0 + 11 * MINUTE).isoformat()
    assert TickBatch.objects.get(instrument_symbol="BTC-USD").data_problem == "DATA_STALE"


def test_missing_bars_are_data_unavailable(tenant_a, owner_a):
    eth = Instrument.objects.get(symbol="ETH-USD")
    running_bot(tenant_a, owner_a, instruments=("ETH-USD",))
    result = tick(eth, 10)
    assert result.reasons == {"DATA_UNAVAILABLE": 1} and result.intents_created == 0


def test_a_closed_market_is_a_no_trade_with_the_next_open(tenant_a, owner_a):
    es = Instrument.objects.get(symbol="ES")
    running_bot(tenant_a, owner_a, instruments=("ES",))
    saturday = datetime(2026, 11, 7, 15, 0, tzinfo=UTC)
    run_tick_batch(instrument=es, timeframe="1m", as_of=saturday, sync_oms=True)
    (trace,) = traces(tenant_a)
    assert trace.reason_code == "MARKET_CLOSED"
    assert trace.details["next_open"].startswith("2026-11-08")


def test_a_killed_bot_ticks_to_a_killed_trace_and_sends_nothing(btc, tenant_a, owner_a):
    bot = running_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        bot_services.bot_kill(bot_id=bot.id, actor=owner_a, reason="test")
    result = tick(btc, 10)
    assert result.reasons == {"KILLED": 1} and result.intents_created == 0
    assert traces(tenant_a)[0].details["level"] == "bot"


def test_a_retired_bot_whose_runner_still_runs_ticks_to_a_retired_trace_and_sends_nothing(btc, tenant_a, owner_a):
    """The tick asks the same trading rule as the intent path: retiring a bot does not stop its runner, and its
    tick used to decide and submit an intent the OMS then rejected."""
    bot = running_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        bot_services.bot_demote(bot_id=bot.id, to_stage="RETIRED", actor=owner_a, reason="test")
    result = tick(btc, 10)
    assert result.reasons == {"RETIRED": 1} and result.intents_created == 0
    assert traces(tenant_a)[0].details == {"error_code": "BOT_RETIRED"}
    with tenancy.tenant_context(tenant_a.id):
        assert not TradeIntent.objects.exists()


def test_a_risk_limit_blocks_with_the_limit_and_values(btc, tenant_a, owner_a):
    running_bot(tenant_a, owner_a, risk_limits={"max_position": "0.5"})
    result = tick(btc, 10)
    assert result.reasons == {"RISK_BLOCKED": 1} and result.intents_created == 0
    (trace,) = traces(tenant_a)
    refusal = trace.details["refusals"][0]
    assert refusal["limit"] == "max_position" and refusal["scope"] == "bot"


def test_unreadable_tenant_limits_halt_the_tenant_scope_and_the_batch_still_traces(btc, tenant_a, owner_a):
    first = running_bot(tenant_a, owner_a, "first")
    assert tick(btc, 10).intents_created == 1  # an order row: the risk statement now reads the order window
    with tenancy.tenant_context(tenant_a.id):  # a stored window no timedelta (nor timestamp arithmetic) can hold
        TradingControl.objects.create(bot=None, risk_limits={"duplicate_window_seconds": 10**20})
    second = running_bot(tenant_a, owner_a, "second")
    result = tick(btc, 11)
    assert result.errors == 0 and result.reasons == {"ALREADY_AT_TARGET": 1, "RISK_BLOCKED": 1}
    assert traces(tenant_a, bot_id=first.id)[-1].reason_code == "ALREADY_AT_TARGET"
    refusal = traces(tenant_a, bot_id=second.id)[-1].details["refusals"][0]
    assert refusal["scope"] == "tenant" and refusal["values"]["trading_state"] == "HALTED"
    with tenancy.tenant_context(tenant_a.id), transaction.atomic():  # as of now, the order is inside every window
        scopes = risk_snapshot(bots=[first], instrument=btc, at=timezone.now()).scopes[first.id]
    assert scopes[1].state.trading_state == "HALTED" and len(scopes[0].state.recent_orders) == 1


def test_the_circuit_breaker_kills_a_bot_after_consecutive_errors(btc, tenant_a, owner_a, settings):
    settings.TICK_MAX_CONSECUTIVE_ERRORS = 2
    bot = running_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bot.pk).update(parameters={"fast": 2})  # corrupted outside the services
    assert tick(btc, 9).reasons == {"TICK_ERROR": 1}
    assert tick(btc, 10).reasons == {"TICK_ERROR": 1}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        runner = Runner.objects.get(bot=bot)
    assert bot.killed and bot.killed_by == "circuit_breaker" and runner.consecutive_errors == 2
    assert tick(btc, 11).reasons == {"KILLED": 1}


def test_a_replay_runner_ticks_through_its_range_and_stops(btc, tenant_a, owner_a):
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name="replayer", strategy="ma_crossover", parameters=PARAMS, instruments=["BTC-USD"]
        )
        runner = bot_services.runner_start(
            bot_id=bot.id,
            actor=owner_a,
            mode=Runner.Mode.REPLAY,
            replay_start=T0 + 4 * MINUTE,
            replay_end=T0 + 12 * MINUTE,
        )
        summary = run_replay(runner_id=runner.id)
        bot_services.runner_finish_replay(runner_id=runner.id, summary=summary)
        runner.refresh_from_db()
        replayed = list(TickTrace.objects.filter(context="replay", run_ref=runner.id).order_by("bar_ts"))
        fills = list(Fill.objects.all())
    assert runner.status == Runner.Status.STOPPED and "replay finished" in runner.stop_reason
    assert [t.bar_ts for t in replayed] == [T0 + i * MINUTE for i in range(3, 12)]
    assert replayed[0].kind == "decision"  # warm on its first bar (4 bars closed), buys, fills at bar 4's open
    assert {t.reason_code for t in replayed[1:]} == {"ALREADY_AT_TARGET"}
    assert len(fills) == 1 and fills[0].price == Decimal("104")


def test_tick_command_runs_one_batch_as_of_a_past_time(btc, tenant_a, owner_a):
    running_bot(tenant_a, owner_a)
    out = io.StringIO()
    call_command("tick", "--timeframe", "1m", "--at", (T0 + 10 * MINUTE).isoformat(), stdout=out)
    assert "BTC-USD 1m" in out.getvalue() and "decisions=1" in out.getvalue()


def test_traces_and_why_not_over_the_api_are_tenant_scoped(btc, tenant_a, owner_a, api_viewer_a, api_owner_b):
    bot = running_bot(tenant_a, owner_a)
    assert api_viewer_a.get(f"/api/bots/{bot.id}/why-not").json()["ticked"] is False
    tick(btc, 60)
    body = api_viewer_a.get(f"/api/bots/{bot.id}/why-not").json()
    assert (body["trading"], body["reason_code"]) == (False, "DATA_STALE")
    assert body["what_would_change_it"]
    listed = api_viewer_a.get(f"/api/bots/{bot.id}/traces?kind=no_trade&limit=5").json()["results"]
    assert [t["reason_code"] for t in listed] == ["DATA_STALE"]
    assert api_viewer_a.get(f"/api/bots/{bot.id}/traces?kind=nonsense").status_code == 400
    for path in ("traces", "why-not"):
        assert api_owner_b.get(f"/api/bots/{bot.id}/{path}").status_code == 404


def test_stale_data_shows_in_system_status(btc, tenant_a, owner_a, api_viewer_a):
    running_bot(tenant_a, owner_a)
    tick(btc, 60)
    body = api_viewer_a.get("/api/system/status").json()
    assert body["status"] != "OK"
    assert any(b["code"] == "DATA_STALE" and "BTC-USD" in b["component"] for b in body["blockers"])
    assert body["scheduler"]["last_tick_at"] is not None


def test_tick_batches_show_in_the_admin_observatory(btc, tenant_a, owner_a):
    from django.test import Client

    from tests.factories import UserFactory

    running_bot(tenant_a, owner_a)
    tick(btc, 60)
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get("/admin/execution/tickbatch/").content.decode()
    assert "BTC-USD" in page and "DATA_STALE" in page


def test_a_batch_that_starts_late_sends_nothing_and_traces_each_bot_as_tick_late(btc, tenant_a, owner_a):
    """Beat's batch task judges lateness by the wall clock: a batch for a bar of weeks ago (a backlog, a worker
    that was down) must not trade on it."""
    from execution.tasks import tick_batch

    bot = running_bot(tenant_a, owner_a)
    as_of = T0 + 10 * MINUTE
    before = timezone.now()
    summary = tick_batch(instrument_id=btc.id, timeframe="1m", as_of=as_of.isoformat())
    assert summary["intents_created"] == 0 and summary["reasons"] == {"TICK_LATE": 1}
    (trace,) = traces(tenant_a, bot_id=bot.id)
    assert (trace.kind, trace.reason_code, trace.bar_ts) == ("no_trade", "TICK_LATE", T0 + 9 * MINUTE)
    details = trace.details
    assert details["as_of"] == as_of.isoformat() and details["allowed_lateness_seconds"] == 30
    started_at = datetime.fromisoformat(details["started_at"])
    assert before <= started_at <= timezone.now()
    assert details["lateness_seconds"] == pytest.approx((started_at - as_of).total_seconds())
    with tenancy.tenant_context(tenant_a.id):
        assert not TradeIntent.objects.exists()
        assert Runner.objects.get(bot=bot).last_tick_at is not None
    assert TickBatch.objects.get(instrument_symbol="BTC-USD").no_trades == 1


def test_a_batch_within_its_allowed_lateness_decides_and_one_past_it_does_not(btc, tenant_a, owner_a, settings):
    settings.TICK_MAX_LATENESS_SECONDS = 20
    running_bot(tenant_a, owner_a)
    as_of = T0 + 10 * MINUTE
    on_time = run_tick_batch(instrument=btc, timeframe="1m", as_of=as_of, started_at=as_of + timedelta(seconds=20))
    assert on_time.intents_created == 1
    late = run_tick_batch(
        instrument=btc, timeframe="1m", as_of=as_of + MINUTE, started_at=as_of + MINUTE + timedelta(seconds=21)
    )
    assert late.reasons == {"TICK_LATE": 1} and late.intents_created == 0
    assert traces(tenant_a)[-1].details["allowed_lateness_seconds"] == 20


def test_beat_sends_each_batch_with_an_expiry_derived_from_its_timeframe(btc, tenant_a, owner_a):
    """A batch message that waits past its timeframe is dropped by the worker instead of piling up."""
    from controlplane.celery import app
    from execution.tasks import dispatch_ticks
    from execution.tick.batches import floor_to_timeframe

    running_bot(tenant_a, owner_a)
    with app.connection_for_write() as connection:
        connection.default_channel.client.delete("ticks")
    as_of = floor_to_timeframe(timezone.now(), "5m")
    assert dispatch_ticks("5m") == 0  # the bot ticks 1m: nothing for 5m
    assert dispatch_ticks("1m") == 1
    with app.connection_for_read() as connection:
        inbox = connection.SimpleQueue("ticks")
        try:
            message = inbox.get(block=True, timeout=10)
            message.ack()
        finally:
            inbox.close()
    assert message.headers["task"] == "execution.tick_batch"
    assert message.payload[1]["instrument_ids"] == [btc.id] and message.payload[1]["tenant_ids"] == [tenant_a.id]
    sent_as_of = datetime.fromisoformat(message.payload[1]["as_of"])
    assert sent_as_of - as_of < timedelta(minutes=5)
    assert datetime.fromisoformat(message.headers["expires"]) == sent_as_of + timedelta(seconds=54)


def test_beat_groups_instruments_into_tasks_of_tick_batch_instruments_with_their_tenants(tenant_a, tenant_b, settings):
    from execution.tick.batches import task_groups

    settings.TICK_BATCH_INSTRUMENTS = 2
    es, btc, eth = (Instrument.objects.get(symbol=s) for s in ("ES", "BTC-USD", "ETH-USD"))
    groups = task_groups({btc: [tenant_a.id], es: [tenant_b.id], eth: [tenant_a.id, tenant_b.id]})
    assert groups == [([btc, es], sorted([tenant_a.id, tenant_b.id])), ([eth], [tenant_a.id, tenant_b.id])]


def test_a_late_task_over_several_instruments_traces_each_bot_on_each_as_tick_late(
    btc, tenant_a, tenant_b, owner_a, owner_b
):
    """Beat's task runs several instruments' batches; started late, every bot of every tenant on each of them is
    traced TICK_LATE once per instrument, each instrument's summary counts its own, and nothing is sent."""
    from execution.tasks import tick_batch

    eth = Instrument.objects.get(symbol="ETH-USD")
    both = running_bot(tenant_a, owner_a, "both", instruments=("BTC-USD", "ETH-USD"))
    other = running_bot(tenant_b, owner_b, "eth", instruments=("ETH-USD",))
    as_of = T0 + 10 * MINUTE
    summaries = tick_batch(
        instrument_ids=[btc.id, eth.id], timeframe="1m", as_of=as_of.isoformat(), tenant_ids=[tenant_a.id, tenant_b.id]
    )
    assert [(s["instrument"], s["bots"], s["reasons"]) for s in summaries] == [
        ("BTC-USD", 1, {"TICK_LATE": 1}),
        ("ETH-USD", 2, {"TICK_LATE": 2}),
    ]
    assert sorted((t.instrument, t.reason_code) for t in traces(tenant_a, bot_id=both.id)) == [
        ("BTC-USD", "TICK_LATE"),
        ("ETH-USD", "TICK_LATE"),
    ]
    assert [(t.instrument, t.reason_code) for t in traces(tenant_b, bot_id=other.id)] == [("ETH-USD", "TICK_LATE")]
    assert dict(TickBatch.objects.values_list("instrument_symbol", "no_trades")) == {"BTC-USD": 1, "ETH-USD": 2}
    with tenancy.tenant_context(tenant_a.id):
        assert not TradeIntent.objects.exists()
