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

The pieces, by domain: the tenant's bots read in ``execution.tick.tenant_bots``, the bars in ``execution.tick.bars``,
the warm-up they need in ``execution.tick.warmups``, an instrument's bots decided together in
``execution.tick.deciding`` (a bot's own decision in ``execution.tick.decide``), the heartbeat and the batches'
summary in ``execution.tick.records``, the per-instrument savepoint in ``execution.tick.savepoint``; replay runners
in ``execution.tick.replay``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bots.models import Runner
from bots.strategies import quote_strategy_names
from bots.timeframes import timeframe_delta, timeframe_seconds
from controlplane import tenancy
from controlplane.broker import publish_on_commit
from controlplane.selectors import active_tenant_ids
from controlplane.trace import current_trace_id
from execution.models import Instrument
from execution.orders.oms import process_pending_intents
from execution.orders.paper_venue import match_working_orders
from execution.orders.oms_runs import request_oms_run
from execution.risk.breakers import trip_circuit_breaker
from execution.risk.state import risk_snapshot
from execution.tick.decide import BatchResult, TickBot, TickContext, batch_inputs
from execution.tick.bars import BatchBars, read_batch_bars
from execution.tick.deciding import decide_tenant_bots, trace_instrument_failure
from execution.tick.lateness import tick_lateness
from execution.tick.records import RUNNERS_HEARD_SQL, RUNNERS_TICKED_SQL, record_batches
from execution.tick.savepoint import SavepointOnFirstStatement
from execution.tick.warmups import batch_warmups
from execution.tick.tenant_bots import array_literal, tenant_batch
from traces.models import ReasonCode, TickTrace
from traces.writer import TraceRow, write_traces

logger = logging.getLogger(__name__)


def floor_to_timeframe(at: datetime, timeframe: str) -> datetime:
    """The grid point at or before ``at``: the as_of of the tick that ``at`` belongs to."""
    seconds = timeframe_seconds(timeframe)
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def tick_bar_ts(as_of: datetime, timeframe: str) -> datetime:
    """The bar a tick at ``as_of`` decides on: the one that opened one timeframe earlier and has just closed."""
    return as_of - timeframe_delta(timeframe)


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
    record_batches(
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
                ticking.append((bars, result, batch, bots, *batch_warmups(bots)))
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
                    instrument_rows, instrument_failed = decide_tenant_bots(
                        bots, risk=risk, ctx=ctx, result=result, too_long=too_long
                    )
            except Exception as exc:
                instrument_rows, instrument_failed = trace_instrument_failure(
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
                RUNNERS_TICKED_SQL[(context == TickTrace.Context.TICK, bool(newest_bar_unknown & runner_ids))],
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
                RUNNERS_HEARD_SQL[bool(newest_bar_unknown & runner_ids)],
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
