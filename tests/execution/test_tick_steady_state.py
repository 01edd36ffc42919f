"""The tick's steady state reads each bot's position with the batch and the risk snapshot only for the bots that
would send an order. Its traces are the ones the full path writes (the risk snapshot of every bot read first, then
``decide_for_bot`` one bot at a time) on the same bars and positions."""

import json
import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from bots import services as bot_services
from bots.strategies import get_strategy
from controlplane import tenancy
from controlplane.books import Book
from execution.models import Instrument, StrategyPosition, TickBatch
from execution.orders.paper_venue import match_working_orders
from execution.risk.state import risk_snapshot
from execution.tick import deciding
from execution.tick.batches import BatchBars, run_tick_batch, run_tick_batches, tick_bar_ts
from execution.tick.tenant_bots import tenant_batch
from execution.tick.warmups import batch_warmup
from execution.tick.decide import BatchResult, TickContext, batch_inputs, decide_for_bot
from tests.backtests.helpers import START, store_walk
from traces.models import TickTrace

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)
BARS = 90
BOTS = [
    ("ma_crossover", {"fast": 2, "slow": 5, "size": 1}, {}),
    ("ma_crossover", {"fast": 3, "slow": 12, "size": 2, "allow_short": True}, {}),
    ("ma_crossover", {"fast": 5, "slow": 20, "size": 1, "allow_short": True}, {"max_position": "0.5"}),
    ("ma_crossover", {"fast": 10, "slow": 200, "size": 1}, {}),  # more history than stored: NO_SIGNAL
    ("donchian_breakout", {"entry_lookback": 5, "exit_lookback": 2, "size": 1, "allow_short": True}, {}),
    ("donchian_breakout", {"entry_lookback": 10, "exit_lookback": 5, "size": 3}, {"max_order_size": "2"}),
    ("zscore_mean_reversion", {"lookback": 5, "entry_z": 0.5, "exit_z": 0.1, "size": 1, "allow_short": True}, {}),
    ("zscore_mean_reversion", {"lookback": 8, "entry_z": 0.8, "exit_z": 0.0, "size": 1, "allow_short": True}, {}),
]
COMPARED = ("kind", "reason_code", "details", "inputs", "signal", "risk_checks")


def _make_bots(tenant, owner, instrument, prefix=""):
    with tenancy.tenant_context(tenant.id):
        bots = []
        for n, (strategy, params, limits) in enumerate(BOTS):
            bot = bot_services.bot_create(
                actor=owner,
                name=f"{prefix}b{n}",
                strategy=strategy,
                parameters=params,
                instruments=[instrument.symbol],
                risk_limits=limits,
            )
            bot_services.runner_start(bot_id=bot.id, actor=owner)
            bots.append(bot)
        # A paper bot with a row in the live book too: its paper position is the one it decides on.
        StrategyPosition.objects.create(bot=bots[0], instrument=instrument, book=Book.LIVE, quantity=Decimal(7))
        killed = bot_services.bot_create(
            actor=owner,
            name=f"{prefix}killed",
            strategy="ma_crossover",
            parameters={"fast": 2, "slow": 5},
            instruments=[instrument.symbol],
        )
        bot_services.runner_start(bot_id=killed.id, actor=owner)
        bot_services.bot_kill(bot_id=killed.id, actor=owner, reason="test")
    return bots + [killed]


class _Rollback(Exception):
    pass


def _full_path_rows(instrument, as_of) -> dict[int, dict]:
    """What the tick wrote before its steady state skipped the risk snapshot: fills, then the risk snapshot of every
    bot, then ``decide_for_bot`` one by one. Run in a transaction that is rolled back (its intents included)."""
    rows = {}
    bar_ts = tick_bar_ts(as_of, "1m")
    try:
        with transaction.atomic():
            batch = tenant_batch(
                instruments=[instrument], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK
            )[instrument.id]
            tick_bars, strategy_bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(
                batch_warmup(batch.bots) + 1
            )
            if tick_bars.check.ok and batch.sim_orders_working:
                match_working_orders(instrument=instrument, timeframe="1m", bar_ts=tick_bars.check.bar_ts)
            risk = risk_snapshot(bots=batch.bots, instrument=instrument, at=as_of)
            ctx = TickContext(
                bars=tick_bars,
                strategy_bars=strategy_bars,
                bar_ts=bar_ts,
                context=TickTrace.Context.TICK,
                run_ref=None,
                system_killed=batch.system_killed,
                tenant_killed=batch.tenant_killed,
                inputs=batch_inputs(tick_bars),
            )
            result = BatchResult(instrument=instrument.symbol, timeframe="1m", as_of=as_of)
            for bot in batch.bots:
                row = decide_for_bot(
                    bot,
                    position=risk.positions[bot.id],
                    scopes=risk.scopes[bot.id],
                    ctx=ctx,
                    gate_cache={},
                    result=result,
                )
                rows[bot.id] = {field: getattr(row, field) for field in COMPARED} | {"traded": bool(row.intent_id)}
            raise _Rollback
    except _Rollback:
        pass
    return rows


def test_steady_state_traces_equal_the_full_risk_snapshot_path_on_the_same_bars_and_positions(tenant_a, owner_a):
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    bots = _make_bots(tenant_a, owner_a, instrument)
    reasons, positions = set(), set()
    for minute in range(60, BARS):  # orders of one tick fill on the next: the bots' positions drift apart
        as_of = START + minute * MINUTE
        with tenancy.tenant_context(tenant_a.id):
            expected = _full_path_rows(instrument, as_of)
        result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=as_of, sync_oms=True)
        assert result.bots == len(bots) and not result.errors, result.reasons
        with tenancy.tenant_context(tenant_a.id):
            traced = {t.bot_id: t for t in TickTrace.objects.filter(bar_ts=as_of - MINUTE)}
        assert set(traced) == set(expected) == {bot.id for bot in bots}
        for bot in bots:
            trace = traced[bot.id]
            got = {field: getattr(trace, field) for field in COMPARED} | {"traded": bool(trace.intent_id)}
            assert got == expected[bot.id], (minute, bot.name)
            reasons.add(trace.reason_code or "TRADED")
            positions.add(trace.inputs.get("position"))
    assert {"TRADED", "ALREADY_AT_TARGET", "RISK_BLOCKED", "KILLED", "NO_SIGNAL"} <= reasons, reasons
    assert {-1.0, 0.0, 1.0} <= positions, positions
    with tenancy.tenant_context(tenant_a.id):  # the live-book row never leaked into the paper bot's decisions
        assert StrategyPosition.objects.get(bot=bots[0], book=Book.LIVE).quantity == 7


def test_a_run_over_several_instruments_traces_each_bot_as_its_instruments_own_batch_would(tenant_a, owner_a):
    """Beat's tasks run the batches of several instruments together (one read of the tenant's bots, one trace write,
    one heartbeat, one commit). Each bot's trace on each instrument is still the full path's on that instrument's
    bars and positions, a bot on two instruments gets one on each, and each instrument keeps its own TickBatch."""
    from bots.models import Runner

    btc, eth = Instrument.objects.get(symbol="BTC-USD"), Instrument.objects.get(symbol="ETH-USD")
    store_walk(btc, BARS, seed=13)
    store_walk(eth, BARS, seed=29)
    bots = _make_bots(tenant_a, owner_a, btc) + _make_bots(tenant_a, owner_a, eth, prefix="eth-")
    with tenancy.tenant_context(tenant_a.id):
        both = bot_services.bot_create(
            actor=owner_a,
            name="both",
            strategy="donchian_breakout",
            parameters={"entry_lookback": 5, "exit_lookback": 2, "size": 1, "allow_short": True},
            instruments=["BTC-USD", "ETH-USD"],
        )
        bot_services.runner_start(bot_id=both.id, actor=owner_a)
    on = {btc.id: {b.id for b in bots if b.instruments == ["BTC-USD"]} | {both.id}}
    on[eth.id] = {b.id for b in bots if b.instruments == ["ETH-USD"]} | {both.id}
    reasons = set()
    for minute in range(60, BARS):
        as_of = START + minute * MINUTE
        with tenancy.tenant_context(tenant_a.id):
            expected = {instrument.id: _full_path_rows(instrument, as_of) for instrument in (btc, eth)}
        results = run_tick_batches(instruments=[btc, eth], timeframe="1m", as_of=as_of, sync_oms=True)
        assert [r.instrument for r in results] == ["BTC-USD", "ETH-USD"]
        for instrument, result in zip((btc, eth), results):
            assert result.bots == len(on[instrument.id]) and not result.errors, result.reasons
            with tenancy.tenant_context(tenant_a.id):
                traced = {
                    t.bot_id: t for t in TickTrace.objects.filter(bar_ts=as_of - MINUTE, instrument=instrument.symbol)
                }
            assert set(traced) == set(expected[instrument.id]) == on[instrument.id]
            for bot_id, trace in traced.items():
                got = {field: getattr(trace, field) for field in COMPARED} | {"traded": bool(trace.intent_id)}
                assert got == expected[instrument.id][bot_id], (minute, instrument.symbol, bot_id)
                reasons.add(trace.reason_code or "TRADED")
        recorded = {b.instrument_symbol: b for b in TickBatch.objects.filter(as_of=as_of, timeframe="1m")}
        assert set(recorded) == {"BTC-USD", "ETH-USD"}
        for result in results:
            batch = recorded[result.instrument]
            assert (batch.bots, batch.decisions, batch.no_trades, batch.intents_created, batch.errors) == (
                result.bots,
                result.decisions,
                result.no_trades,
                result.intents_created,
                result.errors,
            )
        assert recorded["BTC-USD"].trace_id == recorded["ETH-USD"].trace_id
    assert {"TRADED", "ALREADY_AT_TARGET", "RISK_BLOCKED", "KILLED", "NO_SIGNAL"} <= reasons, reasons
    with tenancy.tenant_context(tenant_a.id):
        assert Runner.objects.get(bot=both).consecutive_errors == 0
        assert not Runner.objects.filter(consecutive_errors__gt=0).exists()


def test_a_bots_instruments_are_matched_as_symbols_once_each(tenant_a, owner_a):
    """The batch read expands each bot's instruments and joins them to the batch's: a symbol listed twice is still
    one trace a bar, an object or a list in the list is no symbol, and a bot whose instruments are not a list (the
    API writes only lists of symbols) ticks on none."""
    from bots.models import Bot

    btc = Instrument.objects.get(symbol="BTC-USD")
    store_walk(btc, BARS, seed=13)
    with tenancy.tenant_context(tenant_a.id):
        made = {}
        for name, listed in [
            ("twice", ["BTC-USD", "ETH-USD", "BTC-USD"]),
            ("odd", [7, {"BTC-USD": 1}, ["BTC-USD"], "BTC-USD"]),
            ("none", [7, {"BTC-USD": 1}]),
            ("object", {"BTC-USD": 1}),
        ]:
            bot = bot_services.bot_create(
                actor=owner_a, name=name, strategy="ma_crossover", parameters={"fast": 2, "slow": 5}, instruments=[]
            )
            Bot.objects.filter(pk=bot.pk).update(instruments=listed)
            bot_services.runner_start(bot_id=bot.id, actor=owner_a)
            made[name] = bot.id
        bar_ts = tick_bar_ts(START + 60 * MINUTE, "1m")
        read = tenant_batch(instruments=[btc], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK)
    assert sorted(bot.id for bot in read[btc.id].bots) == sorted([made["twice"], made["odd"]])
    result = run_tick_batch(instrument=btc, timeframe="1m", as_of=START + 60 * MINUTE, sync_oms=True)
    assert result.bots == 2 and not result.errors
    with tenancy.tenant_context(tenant_a.id):
        assert sorted(TickTrace.objects.filter(bar_ts=bar_ts).values_list("bot_id", flat=True)) == sorted(
            [made["twice"], made["odd"]]
        )


def _jit_compiled(cursor) -> bool:
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(g) FROM generate_series(1, 10) g")
    return "JIT" in cursor.fetchone()[0][0]


def test_the_ticks_transaction_compiles_nothing_with_jit_whatever_the_planners_estimates(tenant_a, owner_a):
    """The bots read's estimate grows with the planner's guesses (a hundred instruments assumed a bot): on the
    bench's 1,000 bots it passed jit_above_cost and each round spent 555 ms compiling a 7 ms statement. The tick's
    transaction runs with JIT off from its first statement on; here every statement's cost passes the threshold."""
    from django.db import connection

    btc = Instrument.objects.get(symbol="BTC-USD")
    _make_bots(tenant_a, owner_a, btc)
    with tenancy.tenant_context(tenant_a.id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_jit_available(), set_config('jit_above_cost', '0', true)")
        # Debian's postgresql-15 ships llvmjit: without JIT this test would prove nothing, so it fails instead.
        assert cursor.fetchone()[0], "this Postgres has no JIT (pg_jit_available() is false)"
        assert _jit_compiled(cursor)  # the threshold is passed: any statement would compile
        bar_ts = tick_bar_ts(START + 60 * MINUTE, "1m")
        read = tenant_batch(instruments=[btc], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK)
        assert len(read[btc.id].bots) == len(BOTS) + 1
        assert not _jit_compiled(cursor)


def test_a_bot_whose_position_moved_after_the_batch_read_is_decided_on_the_risk_snapshots(tenant_a, owner_a):
    """The batch read a position the bot no longer holds (a fill committed in between) and on it the bot would send
    an order: the risk snapshot read for that order has the current position, and the bot is decided again on it,
    so its trace's position, signal and outcome are those of the current position, never the stale one's."""
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    params = {"entry_lookback": 5, "exit_lookback": 2, "size": 1, "allow_short": True}
    strategy = get_strategy("donchian_breakout")
    # A bar on which the stale position (long 1) would exit but the current one (flat) holds: different signals.
    found = None
    for minute in range(20, BARS):
        as_of = START + minute * MINUTE
        _, bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(20)
        stale, fresh = strategy.decide(params, bars, 1.0), strategy.decide(params, bars, 0.0)
        if stale.target != 1.0 and stale.reason != fresh.reason:
            found = as_of, fresh
            break
    assert found is not None
    as_of, fresh = found
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name="moved", strategy="donchian_breakout", parameters=params, instruments=["BTC-USD"]
        )
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
        with transaction.atomic():
            bar_ts = tick_bar_ts(as_of, "1m")
            batch = tenant_batch(
                instruments=[instrument], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK
            )[instrument.id]
            (read,) = batch.bots
            assert read.position() == 0
            stale_bot = replace(read, paper_position=Decimal(1))  # what the batch read before the fill
            tick_bars, strategy_bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(20)
            ctx = TickContext(
                bars=tick_bars,
                strategy_bars=strategy_bars,
                bar_ts=bar_ts,
                context=TickTrace.Context.TICK,
                run_ref=None,
                system_killed=False,
                tenant_killed=False,
                inputs=batch_inputs(tick_bars),
            )
            result = BatchResult(instrument=instrument.symbol, timeframe="1m", as_of=as_of)
            (row,), failed = deciding.decide_tenant_bots([stale_bot], risk=None, ctx=ctx, result=result)
    assert not failed
    assert row.inputs["position"] == 0.0
    assert row.signal == {"target": fresh.target, "reason": fresh.reason, **fresh.values}
    expected_reason = "ALREADY_AT_TARGET" if fresh.target == 0 else None
    assert row.reason_code == expected_reason


def test_a_bot_that_would_send_an_order_without_risk_scopes_fails_closed(tenant_a, owner_a):
    """``act_on_decision`` never checks an order against no scopes: called without them for a bot that would send
    an order, it raises (the tick traces a TICK_ERROR) instead of passing the order unchecked."""
    from execution.tick.decide import act_on_decision

    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    as_of = START + 70 * MINUTE
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a, name="m", strategy="ma_crossover", parameters={"fast": 2, "slow": 5}, instruments=["BTC-USD"]
        )
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
        with transaction.atomic():
            bar_ts = tick_bar_ts(as_of, "1m")
            (read,) = tenant_batch(
                instruments=[instrument], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK
            )[instrument.id].bots
            tick_bars, strategy_bars = BatchBars(instrument=instrument, timeframe="1m", as_of=as_of).read(10)
            ctx = TickContext(
                bars=tick_bars,
                strategy_bars=strategy_bars,
                bar_ts=bar_ts,
                context=TickTrace.Context.TICK,
                run_ref=None,
                system_killed=False,
                tenant_killed=False,
                inputs=batch_inputs(tick_bars),
            )
            decision = get_strategy("ma_crossover").decide(read.parameters, strategy_bars, 0.0)
            result = BatchResult(instrument=instrument.symbol, timeframe="1m", as_of=as_of)
            flat = replace(decision, target=1.0)
            with pytest.raises(RuntimeError, match="risk scopes"):
                act_on_decision(read, flat, position=Decimal(0), scopes=None, ctx=ctx, result=result)
    assert result.intents_created == 0


def _running_ma_bots(tenant, owner, count: int, *, prefix: str, slow: int) -> list:
    """``count`` running ma_crossover bots (fast 2) on BTC-USD."""
    with tenancy.tenant_context(tenant.id):
        bots = []
        for n in range(count):
            bot = bot_services.bot_create(
                actor=owner,
                name=f"{prefix}{n}",
                strategy="ma_crossover",
                parameters={"fast": 2, "slow": slow},
                instruments=["BTC-USD"],
            )
            bot_services.runner_start(bot_id=bot.id, actor=owner)
            bots.append(bot)
    return bots


def test_a_bots_parameters_with_an_integer_past_64_bits_are_read_and_fail_that_bot_alone(tenant_a, owner_a):
    """The batch reads bots' JSON through orjson, which refuses integers past 64 bits; such a (corrupt) value is
    read as the stdlib reads it, so the bot gets its own trace and its peers decide as usual."""
    from bots.models import Bot

    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_walk(instrument, BARS, seed=13)
    bots = _running_ma_bots(tenant_a, owner_a, 2, prefix="m", slow=5)
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=bots[1].pk).update(
            parameters={"fast": 2, "slow": 5, "note": 10**30}
        )  # outside the services
    result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=START + 70 * MINUTE, sync_oms=True)
    assert result.bots == 2
    with tenancy.tenant_context(tenant_a.id):
        traced = {t.bot_id: t for t in TickTrace.objects.filter(bar_ts=START + 69 * MINUTE)}
    assert set(traced) == {bots[0].id, bots[1].id}
    assert traced[bots[1].id].reason_code == "TICK_ERROR" and traced[bots[0].id].reason_code != "TICK_ERROR"


@pytest.mark.parametrize(
    "text",
    [
        '{"fast": 2, "slow": 5, "size": 1}',
        '{"a": 1000000000000000000000000000000, "b": [18446744073709551616, -9223372036854775809]}',
        '{"a": 0.1, "b": -0.0, "c": 12345678901234567890.5, "d": null, "e": "x\\u00e9"}',
        '{"a": 1' + "0" * 400 + "}",
    ],
)
def test_a_bots_json_columns_read_as_the_stdlib_reads_them(text):
    from execution.tick.tenant_bots import _json_object

    got, expected = _json_object(text), json.loads(text)
    assert got == expected and repr(got) == repr(expected)


def _risk_reads(queries) -> list[set[int]]:
    """The bots each risk snapshot among ``queries`` was read for."""
    reads = []
    for query in queries:
        if "execution_tradingcontrol" in query["sql"]:
            (ids,) = re.findall(r"bot_id = ANY\('\{([0-9,]*)\}'", query["sql"])[:1]
            reads.append({int(i) for i in ids.split(",") if i})
    return reads


def test_a_steady_state_batch_reads_no_risk_snapshot_and_a_trading_one_reads_it_for_its_orders_only(tenant_a, owner_a):
    """Once every bot holds its target a batch reads no risk state (its statements do not grow with its bots); a
    batch in which some bots trade reads the risk snapshot once, for those bots only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bots.models import Bot
    from tests.execution.helpers import store_bars

    t0 = START.replace(hour=14)
    instrument = Instrument.objects.get(symbol="BTC-USD")
    store_bars(instrument, t0, 14)  # closes rise every minute: every MA bot's target is long 1
    bots = _running_ma_bots(tenant_a, owner_a, 5, prefix="t", slow=4)

    def tick(minute):
        with CaptureQueriesContext(connection) as queries:
            result = run_tick_batch(instrument=instrument, timeframe="1m", as_of=t0 + minute * MINUTE, sync_oms=True)
        return result, queries.captured_queries

    result, queries = tick(10)  # every bot enters
    assert result.intents_created == 5
    (read,) = _risk_reads(
        queries[: next(i for i, q in enumerate(queries) if "INSERT INTO traces_ticktrace" in q["sql"])]
    )
    assert read == {bot.id for bot in bots}
    result, queries = tick(11)  # the sim venue fills them: the snapshot is read after the fills, for every bot
    assert result.reasons == {"ALREADY_AT_TARGET": 5}
    result, queries = tick(12)  # the steady state
    assert result.reasons == {"ALREADY_AT_TARGET": 5} and not _risk_reads(queries)
    steady = [q["sql"][:60] for q in queries]
    with tenancy.tenant_context(tenant_a.id):  # one bot's target moves to 3: it alone sends an order
        Bot.objects.filter(pk=bots[1].pk).update(parameters={"fast": 2, "slow": 4, "size": 3, "allow_short": False})
    result, queries = tick(13)
    assert result.intents_created == 1
    reads = _risk_reads(queries[: next(i for i, q in enumerate(queries) if "INSERT INTO traces_ticktrace" in q["sql"])])
    assert reads == [{bots[1].id}]
    # The instrument's savepoint is taken before its first statement: a steady instrument runs none, takes none (the
    # one savepoint is the tenant's transaction, inside the test's; the trace write's is sent with its INSERT).
    assert len(steady) <= 10 and sum(sql.startswith('SAVEPOINT "') for sql in steady) == 1, steady
    # The trading one took its own (and its intent's).
    assert sum(q["sql"].startswith('SAVEPOINT "') for q in queries) > 2


def test_an_instruments_failed_risk_read_undoes_that_instrument_alone_and_the_runs_other_instruments_trace_as_usual(
    tenant_a, owner_a, monkeypatch
):
    """A run over several instruments shares one transaction per tenant; a failure outside any one bot's decision
    (here the database fails BTC-USD's risk read, which aborts the transaction as any failed statement does) must
    not take the other instruments' traces with it: the failed instrument's work is rolled back to its savepoint
    and each of its bots is traced TICK_ERROR, counted toward its circuit breaker."""
    from django.db import connection

    from bots.models import Runner

    btc, eth = Instrument.objects.get(symbol="BTC-USD"), Instrument.objects.get(symbol="ETH-USD")
    store_walk(btc, BARS, seed=13)
    store_walk(eth, BARS, seed=29)
    btc_bots = _make_bots(tenant_a, owner_a, btc)
    eth_bots = _make_bots(tenant_a, owner_a, eth, prefix="eth-")
    real_risk_snapshot = deciding.risk_snapshot

    def failing_for_btc(*, bots, instrument, at):
        if instrument.id == btc.id:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")  # a real database error: the transaction is aborted
        return real_risk_snapshot(bots=bots, instrument=instrument, at=at)

    monkeypatch.setattr(deciding, "risk_snapshot", failing_for_btc)
    for minute in range(40, BARS):  # until a BTC-USD bot wants to trade (its risk is read then)
        as_of = START + minute * MINUTE
        btc_result, eth_result = run_tick_batches(instruments=[btc, eth], timeframe="1m", as_of=as_of, sync_oms=True)
        if btc_result.errors:
            break
    else:
        pytest.fail("no BTC-USD bot wanted to trade")

    assert btc_result.bots == btc_result.errors == len(btc_bots) and btc_result.intents_created == 0
    assert btc_result.reasons == {"TICK_ERROR": len(btc_bots)}
    assert eth_result.errors == 0 and eth_result.bots == len(eth_bots)
    with tenancy.tenant_context(tenant_a.id):
        traced = TickTrace.objects.filter(bar_ts=as_of - MINUTE)
        btc_traces = {t.bot_id: t for t in traced.filter(instrument="BTC-USD")}
        assert not traced.filter(instrument="BTC-USD", intent_id__isnull=False).exists()
        eth_traces = traced.filter(instrument="ETH-USD")
        assert sorted(eth_traces.values_list("bot_id", flat=True)) == sorted(b.id for b in eth_bots)
        assert not eth_traces.filter(reason_code="TICK_ERROR").exists()
        errors = dict(Runner.objects.values_list("bot_id", "consecutive_errors"))
    assert set(btc_traces) == {b.id for b in btc_bots}
    for bot in btc_bots:
        trace = btc_traces[bot.id]
        assert trace.reason_code == "TICK_ERROR" and trace.details["scope"] == "instrument"
        assert errors[bot.id] == 1
    assert all(errors[b.id] == 0 for b in eth_bots)


def test_a_bots_parameters_are_parsed_once_and_read_again_whenever_its_row_changes(tenant_a, owner_a):
    """The batch read keeps each bot's parsed parameters and risk limits with its row's version and is sent their
    JSON only when the row changed: an update through the ORM or in raw SQL (which leaves updated_at alone) is
    read at the next tick."""
    from django.db import connection

    from bots.models import Bot

    btc = Instrument.objects.get(symbol="BTC-USD")
    made = _make_bots(tenant_a, owner_a, btc)
    bar_ts = tick_bar_ts(START + 60 * MINUTE, "1m")

    def read() -> dict:
        with tenancy.tenant_context(tenant_a.id), transaction.atomic():
            found = tenant_batch(instruments=[btc], timeframe="1m", bar_ts=bar_ts, context=TickTrace.Context.TICK)
        return {bot.id: bot for bot in found[btc.id].bots}

    first, second = read(), read()
    assert all(second[k].parameters is first[k].parameters for k in first)  # not parsed again
    with tenancy.tenant_context(tenant_a.id):
        assert {k: bot.parameters for k, bot in second.items()} == {
            bot.id: Bot.objects.get(pk=bot.id).parameters for bot in made
        }
    with tenancy.tenant_context(tenant_a.id):
        Bot.objects.filter(pk=made[0].pk).update(parameters={**made[0].parameters, "fast": 3})
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute('UPDATE bots_bot SET risk_limits = \'{"max_position": "9"}\' WHERE id = %s', [made[1].pk])
    third = read()
    assert third[made[0].id].parameters["fast"] == 3
    assert third[made[1].id].risk_limits == {"max_position": "9"}
    assert third[made[2].id].parameters is first[made[2].id].parameters
