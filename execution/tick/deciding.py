"""One tenant's bots on one instrument of a tick, decided together: the gates, one strategy call per strategy and
distinct configuration and position, the risk snapshot for the bots that would send an order, and one trace row per
bot (``execution.tick.batches`` runs it for each instrument of a tenant's batch)."""

from __future__ import annotations

import logging
from decimal import Decimal
from math import copysign

from bots.routing import order_book
from bots.strategies import Decision, get_strategy
from controlplane.errors import ControlPlaneError, ErrorCode
from execution.risk.state import RiskSnapshot, risk_snapshot
from execution.tick.decide import (
    BatchResult,
    TickBot,
    TickContext,
    act_on_decision,
    blocked_before_strategy,
    for_bot,
    gate_facts,
    no_trade,
    sends_order,
)
from execution.tick.warmups import warmup_too_long
from traces.models import ReasonCode, TickTrace
from traces.writer import TraceRow

logger = logging.getLogger(__name__)

_DECISION = TickTrace.Kind.DECISION  # looked up once: an enum member's lookup costs 0.2 us, once per bot and tick
# ``act_on_decision``'s outcomes that depend on the decision and the position alone (no risk check, no intent).
_SENT_NOTHING = frozenset((ReasonCode.NO_SIGNAL, ReasonCode.ALREADY_AT_TARGET))


def error_details(exc: Exception) -> dict:
    """A TICK_ERROR trace's details: our error's code, message and details, or INTERNAL_ERROR and the exception's
    type (never its text, which may carry anything)."""
    known = isinstance(exc, ControlPlaneError)
    return {
        "error_code": str(exc.code if known else ErrorCode.INTERNAL_ERROR),
        "error": exc.message if known else type(exc).__name__,
        "error_details": exc.details if known else None,
    }


def trace_instrument_failure(
    bots: list[TickBot], *, ctx: TickContext, result: BatchResult, before: BatchResult, exc: Exception
) -> tuple[list[TraceRow], list[int]]:
    """Every bot of an instrument whose work was rolled back: a TICK_ERROR each (counted toward its circuit
    breaker), and the instrument's counts as they were before it, plus those errors."""
    logger.exception("tick failed for an instrument", extra={"instrument": ctx.bars.instrument.symbol})
    for name in ("decisions", "no_trades", "intents_created", "errors", "tenants_with_intents", "reasons"):
        setattr(result, name, getattr(before, name))
    details = {**error_details(exc), "scope": "instrument"}
    rows = [no_trade(bot, ctx, ReasonCode.TICK_ERROR, **details) for bot in bots]
    result.errors += len(bots)
    result.no_trades += len(bots)
    result.reasons[ReasonCode.TICK_ERROR] += len(bots)
    return rows, [bot.runner_id for bot in bots]


def decide_tenant_bots(
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
        rows[k] = no_trade(bot, ctx, ReasonCode.TICK_ERROR, **error_details(exc))
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
                tick_error(k, warmup_too_long(too_long[bot.id]))
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
