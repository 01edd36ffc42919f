"""The tick's batch pipeline: market hours → market data → strategy → risk → intent, or the reason there is none.

One batch per (instrument, timeframe, as_of) serves every tenant's running bots on it: the bars are read once, the
calendar asked once. The batches of several instruments run together (beat's dispatcher sends up to
TICK_BATCH_INSTRUMENTS a task): each tenant's bots on all of them are read in one statement and decided in one
transaction that writes exactly one trace per bot and instrument (a decision with its intent, or a no-trade with
its reason) through the bulk trace writer.

Determinism: ``as_of`` is a point on the timeframe's grid, and everything a decision reads is "as of" it (bars up
to it, positions after the sim venue has filled the orders the previous tick sent on the bar that just closed), so
a re-run, a replay and a backtest of the same bars decide the same. A re-run for the same bar creates nothing:
bots that already have a trace for it are skipped, and intents carry an idempotency key per bot and bar.

A bot's own decision is in ``execution.tick.decide``; replay runners in ``execution.tick.replay``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from math import copysign

import orjson
from django.conf import settings
from django.db import DatabaseError, Error, connection, transaction
from django.utils import timezone

from bots.models import Runner
from bots.routing import order_book
from bots.strategies import Bars, Decision, get_strategy, quote_strategy_names
from bots.timeframes import timeframe_delta, timeframe_seconds
from controlplane import tenancy
from controlplane.broker import publish_on_commit
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.selectors import active_tenant_ids
from controlplane.trace import current_trace_id
from execution.marketdata.selectors import TickBars, bars_for_tick, bars_for_ticks
from execution.models import Instrument, TickBatch
from execution.orders.oms import process_pending_intents
from execution.orders.paper_venue import match_working_orders
from execution.orders.oms_runs import request_oms_run
from execution.risk.breakers import trip_circuit_breaker
from execution.risk.state import RiskSnapshot, risk_snapshot
from execution.tick.decide import (
    BatchResult,
    TickBot,
    TickContext,
    act_on_decision,
    batch_inputs,
    blocked_before_strategy,
    for_bot,
    gate_facts,
    no_trade,
    sends_order,
)
from execution.tick.lateness import tick_lateness
from execution.tick.tenant_bots import array_literal, tenant_batch
from traces.models import ReasonCode, TickTrace
from traces.writer import TraceRow, write_traces

logger = logging.getLogger(__name__)

_DECISION = TickTrace.Kind.DECISION  # looked up once: an enum member's lookup costs 0.2 us, once per bot and tick
# ``act_on_decision``'s outcomes that depend on the decision and the position alone (no risk check, no intent).
_SENT_NOTHING = frozenset((ReasonCode.NO_SIGNAL, ReasonCode.ALREADY_AT_TARGET))


def floor_to_timeframe(at: datetime, timeframe: str) -> datetime:
    """The grid point at or before ``at``: the as_of of the tick that ``at`` belongs to."""
    seconds = timeframe_seconds(timeframe)
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def tick_bar_ts(as_of: datetime, timeframe: str) -> datetime:
    """The bar a tick at ``as_of`` decides on: the one that opened one timeframe earlier and has just closed."""
    return as_of - timeframe_delta(timeframe)


# The heartbeat of the runners a tick traced, and for a live tick (``bar_ts``; NULL for a replay's, which leaves it)
# each runner's newest traced bar, which ``execution.tick.tenant_bots`` reads to skip the re-run probe of a runner
# whose newest bar is older than the one it ticks. What it claims, no tick trace of the bot after that bar, is made
# true at a runner's first tick (start and restart leave it NULL; that tick's heartbeat looks up the bot's newest
# tick trace, by whichever runner, after writing its own) and kept by every tick after, in the traces' transaction.
# The look-up is a statement variant of its own, sent only when the batch read saw such a runner: a subquery over
# the partitioned trace table costs its planning (2-3 ms, every partition) on every statement that holds it.
_NEWEST_TRACED = {
    False: "CASE WHEN last_tick_bar_ts IS NULL THEN NULL ELSE greatest(last_tick_bar_ts, %(bar_ts)s::timestamptz) END",
    True: f"""CASE WHEN last_tick_bar_ts IS NOT NULL THEN greatest(last_tick_bar_ts, %(bar_ts)s::timestamptz)
        ELSE (SELECT max(t.bar_ts) FROM {TickTrace._meta.db_table} t
               WHERE t.tenant_id = {Runner._meta.db_table}.tenant_id AND t.bot_id = {Runner._meta.db_table}.bot_id
                 AND t.context = '{TickTrace.Context.TICK}' AND t.run_ref IS NULL) END""",
}
_RUNNERS_TICKED_SQL = {
    (live, look_up): f"""
UPDATE {Runner._meta.db_table} SET last_heartbeat_at = %(now)s, last_tick_at = %(now)s,
    last_tick_bar_ts = {_NEWEST_TRACED[look_up] if live else "last_tick_bar_ts"},
    consecutive_errors = CASE WHEN id = ANY(%(failed)s::bigint[]) THEN consecutive_errors + 1 ELSE 0 END
WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])
"""
    for live in (False, True)
    for look_up in (False, True)
}


_RUNNERS_HEARD_SQL = {
    look_up: f"""
UPDATE {Runner._meta.db_table} SET last_heartbeat_at = %(now)s, last_tick_at = %(now)s,
    last_tick_bar_ts = {_NEWEST_TRACED[look_up]}
WHERE tenant_id = %(tenant)s AND id = ANY(%(ids)s::bigint[])
"""
    for look_up in (False, True)
}


def _warmups(bots: Iterable[TickBot]) -> tuple[int, dict[int, int]]:
    """Bars the batch must read (the most any of its bots needs, at most TICK_MAX_WARMUP_BARS) and the bots whose
    strategy claims more than that cap, with their claims. A bot whose configuration cannot even say (corrupt
    parameters), or claims past the cap, does not stop the others; its own decision fails and is traced as
    TICK_ERROR."""
    cap = settings.TICK_MAX_WARMUP_BARS
    needed, too_long = 1, {}
    claims: dict[tuple[str, int], int | None] = {}  # by strategy and parameters object: bots configured alike share it
    for bot in bots:
        key = (bot.strategy, id(bot.parameters))
        if key in claims:
            claimed = claims[key]
        else:
            try:
                claimed = get_strategy(bot.strategy).warmup_bars(bot.parameters)
            except Exception:
                claimed = None
            claims[key] = claimed
        if claimed is None:
            logger.warning("bot's strategy cannot say its warmup", extra={"bot_id": bot.id})
            continue
        if claimed > cap:
            too_long[bot.id] = claimed
        elif claimed > needed:
            needed = claimed
    return needed, too_long


def _warmup(bots: Iterable[TickBot]) -> int:
    """Bars the batch must read for ``bots``: see ``_warmups``."""
    return _warmups(bots)[0]


def _warmup_too_long(claimed: int) -> ControlPlaneError:
    cap = settings.TICK_MAX_WARMUP_BARS
    return ControlPlaneError(
        ErrorCode.VALIDATION_ERROR,
        f"The strategy's warm-up ({claimed} bars) is more than a tick reads (TICK_MAX_WARMUP_BARS = {cap}).",
        suggested_fix="Fix the bot's parameters through the API (they are validated there).",
        details={"warmup_bars": str(claimed), "max_warmup_bars": cap},
    )


class BatchBars:
    """The bars of one batch, read once and shared by every tenant: only when a tenant has bots to decide, and
    again only if a later tenant's bots need a longer history (a strategy reads its own trailing window, so extra
    history changes no decision)."""

    def __init__(self, *, instrument: Instrument, timeframe: str, as_of: datetime):
        self.instrument, self.timeframe, self.as_of = instrument, timeframe, as_of
        self.count = 0
        self.tick_bars: TickBars | None = None
        self.strategy_bars: Bars | None = None

    def read(self, count: int) -> tuple[TickBars, Bars | None]:
        if self.needs(count):
            self.keep(
                bars_for_tick(instrument=self.instrument, timeframe=self.timeframe, as_of=self.as_of, count=count),
                count,
            )
        return self.tick_bars, self.strategy_bars

    def needs(self, count: int) -> bool:
        return self.tick_bars is None or count > self.count

    def keep(self, tick_bars: TickBars, count: int) -> None:
        self.tick_bars, self.strategy_bars, self.count = tick_bars, _strategy_bars(tick_bars), count


def read_batch_bars(wanted: list[tuple[BatchBars, int]]) -> None:
    """Read the bars of every batch in ``wanted`` (with the count it needs) that does not hold enough yet, all in one
    statement (they share timeframe and as_of); ``BatchBars.read`` then returns them without a query."""
    missing = {bars.instrument: (bars, count) for bars, count in wanted if bars.needs(count)}
    if not missing:
        return
    first = next(iter(missing.values()))[0]
    read = bars_for_ticks(
        counts={instrument: count for instrument, (_, count) in missing.items()},
        timeframe=first.timeframe,
        as_of=first.as_of,
    )
    for instrument, (bars, count) in missing.items():
        bars.keep(read[instrument], count)


def _strategy_bars(tick_bars: TickBars) -> Bars | None:
    history = tick_bars.history
    if not len(history):
        return None
    return Bars.from_columns(
        ts=history.ts, open=history.open, high=history.high, low=history.low, close=history.close, volume=history.volume
    )


class SavepointOnFirstStatement:
    """A savepoint taken just before the block's first statement, released at its end or rolled back to if it raises:
    ``transaction.atomic()`` for a block that usually runs none. An instrument's steady state (no fills, no order)
    decides in Python alone, and a SAVEPOINT and a RELEASE for each of a task's instruments were most of its round
    trips; a block that ran no statement has nothing to undo. Every statement through Django's cursors counts (a
    nested ``atomic()``'s own SAVEPOINT included), so whatever the block comes to run, its first statement finds the
    savepoint taken."""

    def __init__(self, using: str = "default"):
        self.connection = transaction.get_connection(using)
        self.sid: str | None = None
        self._taking = False

    def __call__(self, execute, sql, params, many, context):
        if self.sid is None and not self._taking:
            self._taking = True  # the SAVEPOINT statement itself passes through this wrapper
            self.sid = self.connection.savepoint()
        return execute(sql, params, many, context)

    def __enter__(self) -> SavepointOnFirstStatement:
        if not self.connection.in_atomic_block:
            raise transaction.TransactionManagementError("SavepointOnFirstStatement runs inside atomic() only")
        self._needed_rollback = self.connection.needs_rollback
        self.connection.execute_wrappers.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        connection = self.connection
        connection.execute_wrappers.remove(self)
        if self.sid is None:  # no statement ran: the database is as the block found it
            connection.needs_rollback = self._needed_rollback
            return
        if exc_type is None and not connection.needs_rollback:
            try:
                connection.savepoint_commit(self.sid)
                return
            except DatabaseError:
                self._roll_back()
                raise
        connection.needs_rollback = False  # as atomic() does: back to the savepoint, the transaction goes on
        self._roll_back()

    def _roll_back(self) -> None:
        try:
            self.connection.savepoint_rollback(self.sid)
            self.connection.savepoint_commit(self.sid)
        except Error:  # the transaction cannot go on: atomic() around it rolls it back
            self.connection.needs_rollback = True


def run_tick_batch(
    *,
    instrument: Instrument,
    timeframe: str,
    as_of: datetime,
    sync_oms: bool = False,
    tenant_ids: Iterable[int] | None = None,
    started_at: datetime | None = None,
) -> BatchResult:
    """``run_tick_batches`` for one instrument: its result."""
    return run_tick_batches(
        instruments=[instrument],
        timeframe=timeframe,
        as_of=as_of,
        sync_oms=sync_oms,
        tenant_ids=tenant_ids,
        started_at=started_at,
    )[0]


def run_tick_batches(
    *,
    instruments: list[Instrument],
    timeframe: str,
    as_of: datetime,
    sync_oms: bool = False,
    tenant_ids: Iterable[int] | None = None,
    started_at: datetime | None = None,
) -> list[BatchResult]:
    """Tick every tenant's running live-mode bots on each of ``instruments`` (on ``timeframe``) as of ``as_of`` (a
    grid point): one batch per instrument (its own bars, calendar, freshness verdict, fills, decisions and
    ``TickBatch`` record), run together so that each tenant's bots on all of them are read, traced and heart-beaten
    in one transaction (beat's dispatcher groups up to TICK_BATCH_INSTRUMENTS instruments a task). Returns one
    result per instrument, in the given order.

    ``tenant_ids`` narrows the tenants to visit (the dispatcher knows which have bots on them); by default every
    active tenant is asked. ``started_at`` is the wall-clock start of a live run (beat's task passes it): one that
    starts past its allowed lateness (``execution.tick.lateness``) decides nothing and traces each bot TICK_LATE.
    Without it the run is an explicit one as of a past bar (the ``tick --at`` command, tests, benchmarks) and is
    not judged."""
    started = time.perf_counter()
    as_of = floor_to_timeframe(as_of, timeframe)
    batches = [
        (
            BatchBars(instrument=instrument, timeframe=timeframe, as_of=as_of),
            BatchResult(instrument=instrument.symbol, timeframe=timeframe, as_of=as_of),
        )
        for instrument in instruments
    ]
    late = tick_lateness(as_of=as_of, timeframe=timeframe, started_at=started_at)
    if tenant_ids is None:
        tenant_ids = active_tenant_ids()
    for tenant_id in tenant_ids:
        with tenancy.tenant_context(tenant_id):
            if late is None:
                tick_tenant(batches=batches, context=TickTrace.Context.TICK)
            else:
                _tick_tenant_late(batches=batches, late=late)
    results = [result for _, result in batches]
    # An instrument on which no tenant has a running bot: nothing happened, nothing to record.
    _record_batches(
        [result for result in results if result.bots or result.skipped_already_ticked],
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    _hand_intents_to_oms(results, sync=sync_oms)
    return results


def tick_tenant(
    *,
    batches: list[tuple[BatchBars, BatchResult]],
    context: str,
    run_ref: int | None = None,
    replay_runner_id: int | None = None,
) -> None:
    """One tenant's bots of a run's batches (one per instrument, with its result), in one transaction: for each
    instrument, fills first, then decisions; then every instrument's traces and the runners' heartbeats at once.

    The steady state (no order to fill, no intent to send) is three statements whatever the number of bots and
    instruments: the tenant's batch (with each bot's position in each instrument), the traces (COPY, then one move),
    the runners' heartbeat; plus each instrument's bars, once per run. Each instrument's fills and decisions run in
    their own savepoint, taken before the instrument's first statement (a steady instrument runs none, so takes
    none), so a failure outside any one bot's decision (a fill, a risk read) undoes that instrument alone and traces
    its bots TICK_ERROR (``scope: instrument``). The risk snapshot (limits, trading states, recent orders, PnL) is
    read only for the bots whose decision would send an order, or for every bot on an instrument after the sim
    venue has filled orders on it on this bar."""
    if not batches:
        return
    first = batches[0][0]
    bar_ts = tick_bar_ts(first.as_of, first.timeframe)
    tenant_id = tenancy.require_tenant_id()
    rows: list[TraceRow] = []
    failed: list[int] = []
    runner_ids: set[int] = set()
    with transaction.atomic():
        tenant_batches = tenant_batch(
            instruments=[bars.instrument for bars, _ in batches],
            timeframe=first.timeframe,
            bar_ts=bar_ts,
            context=context,
            run_ref=run_ref,
            replay_runner_id=replay_runner_id,
        )
        newest_bar_unknown = set().union(*(batch.newest_bar_unknown for batch in tenant_batches.values()))
        ticking = []  # (bars, result, the tenant's batch on the instrument, its bots to tick, warm-up, too long)
        for bars, result in batches:
            batch = tenant_batches.get(bars.instrument.id)
            if batch is None:
                continue
            bots = _unticked(batch, result)
            if bots:
                ticking.append((bars, result, batch, bots, *_warmups(bots)))
        read_batch_bars([(bars, needed + 1) for bars, _, _, _, needed, _ in ticking])  # one statement
        for bars, result, batch, bots, needed, too_long in ticking:
            tick_bars, strategy_bars = bars.read(needed + 1)
            result.market_open = tick_bars.status.is_open
            result.data_problem = str(tick_bars.check.problem) if tick_bars.check.problem else None
            ctx = TickContext(
                bars=tick_bars,
                strategy_bars=strategy_bars,
                bar_ts=bar_ts,
                context=context,
                run_ref=run_ref,
                system_killed=batch.system_killed,
                tenant_killed=batch.tenant_killed,
                inputs=batch_inputs(tick_bars),
            )
            before = replace(result, tenants_with_intents=set(result.tenants_with_intents), reasons=+result.reasons)
            try:
                # An instrument's failure outside any one bot's decision (its fills, its risk read) undoes that
                # instrument's work alone: its bots are traced TICK_ERROR, the run's other instruments go on.
                with SavepointOnFirstStatement():
                    risk = None  # read when some bot sends an order; the steady state's positions came with the batch
                    if tick_bars.check.ok and batch.sim_orders_working:
                        match_working_orders(
                            instrument=bars.instrument, timeframe=bars.timeframe, bar_ts=tick_bars.check.bar_ts
                        )
                        risk = risk_snapshot(bots=bots, instrument=bars.instrument, at=bars.as_of)  # after the fills
                    instrument_rows, instrument_failed = _decide_tenant_bots(
                        bots, risk=risk, ctx=ctx, result=result, too_long=too_long
                    )
            except Exception as exc:
                instrument_rows, instrument_failed = _instrument_failed(
                    bots, ctx=ctx, result=result, before=before, exc=exc
                )
            result.bots += len(instrument_rows)
            if any(row.intent_id for row in instrument_rows):
                result.tenants_with_intents.add(tenant_id)
            rows += instrument_rows
            failed += instrument_failed
            runner_ids.update(bot.runner_id for bot in bots)
        if not rows:
            return
        write_traces(rows, fresh=True)  # the batch read left out the bots already traced
        # A runner whose bot ticks on several of these instruments gets one heartbeat, and one more consecutive
        # error if its tick failed on any of them (none if it failed on none).
        with connection.cursor() as cursor:
            cursor.execute(
                _RUNNERS_TICKED_SQL[(context == TickTrace.Context.TICK, bool(newest_bar_unknown & runner_ids))],
                {
                    "now": timezone.now(),
                    "bar_ts": bar_ts,
                    "failed": array_literal(failed),
                    "tenant": tenant_id,
                    "ids": array_literal(sorted(runner_ids)),
                },
            )
    if failed:
        _trip_circuit_breakers(runner_ids=sorted(set(failed)))


def _unticked(batch, result: BatchResult) -> list[TickBot]:
    """The batch's bots not yet traced on this bar (a re-run skips the others, counted on the result)."""
    bots = [bot for bot in batch.bots if not bot.already_ticked]
    result.skipped_already_ticked += len(batch.bots) - len(bots)
    return bots


def _error_details(exc: Exception) -> dict:
    """A TICK_ERROR trace's details: our error's code, message and details, or INTERNAL_ERROR and the exception's
    type (never its text, which may carry anything)."""
    known = isinstance(exc, ControlPlaneError)
    return {
        "error_code": str(exc.code if known else ErrorCode.INTERNAL_ERROR),
        "error": exc.message if known else type(exc).__name__,
        "error_details": exc.details if known else None,
    }


def _instrument_failed(
    bots: list[TickBot], *, ctx: TickContext, result: BatchResult, before: BatchResult, exc: Exception
) -> tuple[list[TraceRow], list[int]]:
    """Every bot of an instrument whose work was rolled back: a TICK_ERROR each (counted toward its circuit
    breaker), and the instrument's counts as they were before it, plus those errors."""
    logger.exception("tick failed for an instrument", extra={"instrument": ctx.bars.instrument.symbol})
    for name in ("decisions", "no_trades", "intents_created", "errors", "tenants_with_intents", "reasons"):
        setattr(result, name, getattr(before, name))
    details = {**_error_details(exc), "scope": "instrument"}
    rows = [no_trade(bot, ctx, ReasonCode.TICK_ERROR, **details) for bot in bots]
    result.errors += len(bots)
    result.no_trades += len(bots)
    result.reasons[ReasonCode.TICK_ERROR] += len(bots)
    return rows, [bot.runner_id for bot in bots]


def _decide_tenant_bots(
    bots: list[TickBot],
    *,
    risk: RiskSnapshot | None,
    ctx: TickContext,
    result: BatchResult,
    too_long: dict[int, int] | None = None,
) -> tuple[list[TraceRow], list[int]]:
    """One trace row per bot, in the bots' order, and the runners whose tick failed.

    First every bot's reasons not to reach its strategy; then the bots that do, grouped by strategy, decide in one
    ``decide_many`` call per strategy (the same decisions as one by one: the batch shares instrument, timeframe and
    bars); then each acts on its decision (risk, intent) in the bots' order. One bot's failure, its strategy's
    batch call included, is that bot's TICK_ERROR, never the batch's; so is a bot that would reach its strategy
    with a warm-up past the bars the batch read (``too_long``: bot id to its claimed warm-up).

    Positions are ``risk``'s when given, else the batch's. In the second case the risk snapshot is read once, for
    the bots whose decision sends an order only: each of them is then decided on the snapshot's position, its
    scopes' own, so the decision, the order and its risk check read one state (as when the snapshot is read for
    every bot first); a bot whose position moved in between is decided again on the new one."""
    gate_cache: dict[tuple[str, str, str], list[dict]] = {}
    rows: list[TraceRow | None] = [None] * len(bots)
    failed: list[int] = []

    def tick_error(k: int, exc: Exception) -> None:
        bot = bots[k]
        logger.exception("tick failed for bot", extra={"bot_id": bot.id, "instrument": ctx.bars.instrument.symbol})
        rows[k] = no_trade(bot, ctx, ReasonCode.TICK_ERROR, **_error_details(exc))
        failed.append(bot.runner_id)
        result.errors += 1

    deciding: dict[str, list[int]] = {}
    reaching: set[tuple] = set()  # gate facts found to reach the strategy: the verdict is the same for their bots
    for k, bot in enumerate(bots):
        facts = gate_facts(bot)
        if facts not in reaching:
            try:
                rows[k] = blocked_before_strategy(bot, ctx=ctx, gate_cache=gate_cache)
            except Exception as exc:  # one bot's failure must not take the batch down; it is traced and counted
                tick_error(k, exc)
                continue
        if rows[k] is None:
            reaching.add(facts)
            if too_long and bot.id in too_long:
                tick_error(k, _warmup_too_long(too_long[bot.id]))
                continue
            deciding.setdefault(bot.strategy, []).append(k)

    decisions: dict[int, Decision] = {}
    held: dict[int, Decimal] = {}
    books: dict[tuple[str, str], str] = {}  # order_book by (venue, stage), the two fields it reads
    for name, waiting in deciding.items():
        members, positions = [], []
        for k in waiting:
            bot = bots[k]
            try:
                if risk is not None:
                    held[k] = risk.positions[bot.id]
                else:
                    book = books.get((bot.venue, bot.stage))
                    if book is None:
                        book = books[(bot.venue, bot.stage)] = order_book(bot)
                    held[k] = bot.position(book)
                positions.append(float(held[k]))
            except Exception as exc:
                tick_error(k, exc)
                continue
            members.append(k)
        # Bots configured alike (one parameters object: ``execution.tick.tenant_bots``) holding the same position
        # get the same decision: each such pair is decided once, and its bots share the Decision.
        slots: dict[tuple, int] = {}
        slot_of, distinct = [], []
        for n, k in enumerate(members):
            position = positions[n]
            key = (id(bots[k].parameters), position, copysign(1.0, position))  # -0.0 is a position of its own
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = len(distinct)
                distinct.append(n)
            slot_of.append(slot)
        try:
            together = get_strategy(name).decide_many(
                [bots[members[n]].parameters for n in distinct], ctx.strategy_bars, [positions[n] for n in distinct]
            )
        except Exception:  # some bot's parameters (or the strategy) fail: decide one by one to find which
            together = None
        for n, k in enumerate(members):
            try:
                decisions[k] = (
                    together[slot_of[n]]
                    if together is not None
                    else get_strategy(name).decide(bots[k].parameters, ctx.strategy_bars, positions[n])
                )
            except Exception as exc:
                tick_error(k, exc)

    if risk is None:
        sends: dict[tuple, bool] = {}  # by decision and position: bots deciding alike share their decision
        ordering = []
        for k, decision in decisions.items():
            key = (id(decision), held[k])
            order = sends.get(key)
            if order is None:
                order = sends[key] = sends_order(decision, held[k])
            if order:
                ordering.append(k)
        if ordering:
            risk = risk_snapshot(bots=[bots[k] for k in ordering], instrument=ctx.bars.instrument, at=ctx.bars.as_of)
            for k in ordering:
                bot = bots[k]
                if risk.positions[bot.id] != held[k]:  # filled since the batch read it: decide on the new one
                    held[k] = risk.positions[bot.id]
                    try:
                        decisions[k] = get_strategy(bot.strategy).decide(
                            bot.parameters, ctx.strategy_bars, float(held[k])
                        )
                    except Exception as exc:
                        del decisions[k]
                        tick_error(k, exc)

    # A decision that sends nothing (no signal, already at target) gives the same trace, but for its bot, to every
    # bot deciding it on the same position: built once, copied for the others.
    sent_nothing: dict[tuple, TraceRow] = {}
    for k, bot in enumerate(bots):
        if k in decisions:
            key = (id(decisions[k]), held[k], held[k].is_signed())  # -0 is traced as a position of its own
            template = sent_nothing.get(key)
            if template is not None:
                rows[k] = for_bot(template, bot.id)
            else:
                try:
                    rows[k] = row = act_on_decision(
                        bot,
                        decisions[k],
                        position=held[k],
                        scopes=risk.scopes.get(bot.id) if risk is not None else None,
                        ctx=ctx,
                        result=result,
                    )
                except Exception as exc:
                    tick_error(k, exc)
                else:
                    if row.reason_code in _SENT_NOTHING:
                        sent_nothing[key] = row
        row = rows[k]
        result.reasons[row.reason_code or "TRADED"] += 1
        if row.kind == _DECISION:
            result.decisions += 1
        else:
            result.no_trades += 1
    return rows, failed


def _tick_tenant_late(*, batches: list[tuple[BatchBars, BatchResult]], late: dict) -> None:
    """One tenant's bots of a run that started too late: a TICK_LATE no-trade each and a heartbeat, and nothing
    else (no bars read, no fills, no decision, no intent). Their tick errors are neither counted nor forgiven."""
    first = batches[0][0]
    bar_ts = tick_bar_ts(first.as_of, first.timeframe)
    rows: list[TraceRow] = []
    runner_ids: set[int] = set()
    inputs = {"as_of": first.as_of.isoformat()}
    with transaction.atomic():
        tenant_batches = tenant_batch(
            instruments=[bars.instrument for bars, _ in batches],
            timeframe=first.timeframe,
            bar_ts=bar_ts,
            context=TickTrace.Context.TICK,
        )
        newest_bar_unknown = set().union(*(batch.newest_bar_unknown for batch in tenant_batches.values()))
        for bars, result in batches:
            batch = tenant_batches.get(bars.instrument.id)
            if batch is None:
                continue
            bots = _unticked(batch, result)
            rows += [
                TraceRow(
                    kind=TickTrace.Kind.NO_TRADE,
                    bot_id=bot.id,
                    instrument=bars.instrument.symbol,
                    timeframe=bars.timeframe,
                    bar_ts=bar_ts,
                    context=TickTrace.Context.TICK,
                    run_ref=None,
                    reason_code=ReasonCode.TICK_LATE,
                    details=late,
                    inputs=inputs,
                    trace_id=current_trace_id(),
                )
                for bot in bots
            ]
            runner_ids.update(bot.runner_id for bot in bots)
            result.bots += len(bots)
            result.no_trades += len(bots)
            result.reasons[ReasonCode.TICK_LATE] += len(bots)
        if not rows:
            return
        write_traces(rows, fresh=True)
        with connection.cursor() as cursor:
            cursor.execute(
                _RUNNERS_HEARD_SQL[bool(newest_bar_unknown & runner_ids)],
                {
                    "now": timezone.now(),
                    "bar_ts": bar_ts,
                    "tenant": tenancy.require_tenant_id(),
                    "ids": array_literal(sorted(runner_ids)),
                },
            )


def _trip_circuit_breakers(*, runner_ids: list[int]) -> None:
    """Kill bots whose ticks failed too many times in a row (the circuit breaker), recording why."""
    limit = settings.TICK_MAX_CONSECUTIVE_ERRORS
    tripped = Runner.objects.filter(id__in=runner_ids, consecutive_errors__gte=limit, bot__killed=False)
    for runner in tripped:
        trip_circuit_breaker(
            bot_id=runner.bot_id,
            trigger="consecutive_errors",
            reason=f"circuit breaker: {runner.consecutive_errors} consecutive tick errors (limit {limit})",
            values={"consecutive_errors": runner.consecutive_errors, "limit": limit, "runner_id": runner.id},
        )


# One statement for every batch of a run, in autocommit: its own transaction, whose commit does not wait for the WAL
# flush (set_config's local setting lasts until that commit). BEGIN, SET LOCAL, INSERT and COMMIT per batch were four
# round trips each. The rows go as one JSON parameter: psycopg parses a statement's placeholders again on every
# execution once it has more than 50 parameters (it caches none past that), and twelve a batch made that parse 1-3 ms
# of client time a round for a 20-instrument task.
_RECORD_BATCHES_SQL = f"""
WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO {TickBatch._meta.db_table} (instrument_symbol, timeframe, as_of, market_open, data_problem, bots,
    decisions, no_trades, intents_created, errors, duration_ms, trace_id, recorded_at)
SELECT v.instrument_symbol, v.timeframe, v.as_of, v.market_open, v.data_problem, v.bots, v.decisions, v.no_trades,
       v.intents_created, v.errors, %(duration_ms)s::double precision, %(trace_id)s, now()
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(instrument_symbol text, timeframe text, as_of timestamptz,
       market_open boolean, data_problem text, bots integer, decisions integer, no_trades integer,
       intents_created integer, errors integer), unflushed
ON CONFLICT ON CONSTRAINT tickbatch_unique DO UPDATE
SET market_open = coalesce(EXCLUDED.market_open, {TickBatch._meta.db_table}.market_open),
    data_problem = CASE WHEN EXCLUDED.market_open IS NULL THEN {TickBatch._meta.db_table}.data_problem
                        ELSE EXCLUDED.data_problem END, bots = {TickBatch._meta.db_table}.bots + EXCLUDED.bots,
    decisions = {TickBatch._meta.db_table}.decisions + EXCLUDED.decisions,
    no_trades = {TickBatch._meta.db_table}.no_trades + EXCLUDED.no_trades,
    intents_created = {TickBatch._meta.db_table}.intents_created + EXCLUDED.intents_created,
    errors = {TickBatch._meta.db_table}.errors + EXCLUDED.errors, duration_ms = EXCLUDED.duration_ms,
    trace_id = EXCLUDED.trace_id, recorded_at = now()
"""


def _record_batches(results: list[BatchResult], *, duration_ms: float) -> None:
    """One upsert per batch (one row per instrument), all in one statement; a re-run adds what it did (usually
    nothing) to the first run's counts. ``duration_ms`` is the whole run's: the batches of one run share their
    transactions, so no batch has a time of its own.

    Its commit does not wait for the WAL flush: this is the batches' summary for the observatory, and the traces,
    intents and heartbeats it counts were committed durably in their own transactions. A database crash in the
    next fraction of a second can lose the summary rows, never the record of what the tick did."""
    if not results:
        return
    rows = [
        {
            "instrument_symbol": result.instrument,
            "timeframe": result.timeframe,
            "as_of": result.as_of.isoformat(),
            "market_open": result.market_open,
            "data_problem": result.data_problem or "",
            "bots": result.bots,
            "decisions": result.decisions,
            "no_trades": result.no_trades,
            "intents_created": result.intents_created,
            "errors": result.errors,
        }
        for result in results
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_BATCHES_SQL,
            {"rows": orjson.dumps(rows).decode(), "duration_ms": round(duration_ms, 3), "trace_id": current_trace_id()},
        )


def _hand_intents_to_oms(results: list[BatchResult], *, sync: bool) -> None:
    """One OMS run per tenant that created intents in any of the run's batches."""
    tenant_ids = sorted({tenant_id for result in results for tenant_id in result.tenants_with_intents})
    for tenant_id in tenant_ids:
        if sync:
            with tenancy.tenant_context(tenant_id):
                process_pending_intents()
        else:  # coalesced: the batches of one tick ask for one run per tenant, not one each
            publish_on_commit(lambda t=tenant_id: request_oms_run(t), what=f"OMS run of tenant {tenant_id}")


def instruments_to_tick(*, timeframe: str) -> dict[Instrument, list[int]]:
    """Every instrument some tenant's running live-mode bot ticks on ``timeframe``, with those tenants' ids (one
    query per tenant), so each batch visits only the tenants that have bots on it."""
    tenants_by_symbol: dict[str, set[int]] = {}
    for tenant_id in active_tenant_ids():
        with tenancy.tenant_context(tenant_id), transaction.atomic():
            for instruments in (
                Runner.objects.filter(status=Runner.Status.RUNNING, mode=Runner.Mode.LIVE, bot__timeframe=timeframe)
                .exclude(bot__strategy__in=quote_strategy_names())
                .values_list("bot__instruments", flat=True)
            ):
                for symbol in instruments:
                    tenants_by_symbol.setdefault(symbol, set()).add(tenant_id)
    return {
        instrument: sorted(tenants_by_symbol[instrument.symbol])
        for instrument in Instrument.objects.filter(symbol__in=tenants_by_symbol).order_by("symbol")
    }


def task_groups(instruments: dict[Instrument, list[int]]) -> list[tuple[list[Instrument], list[int]]]:
    """``instruments_to_tick``'s instruments in groups of at most TICK_BATCH_INSTRUMENTS (in symbol order), each
    with the tenants that have bots on any of its instruments: beat sends one task per group."""
    size = max(1, settings.TICK_BATCH_INSTRUMENTS)
    ordered = list(instruments)
    groups = []
    for start in range(0, len(ordered), size):
        group = ordered[start : start + size]
        groups.append((group, sorted({tenant_id for instrument in group for tenant_id in instruments[instrument]})))
    return groups
