"""One bot's decision on a tick: why it may not trade, or what it sent.

The order an operator reads a trace in: kill switches, an unresolved reconcile mismatch, missing integrations,
market hours, the bars, the strategy, the risk limits, then the intent. Every branch that sends nothing returns a
no-trade row with one reason code; the one that sends returns a decision row naming its intent.

Only LIVE bots route orders to their configured venue; every other stage trades on the sim venue (paper trading on
real bars), whatever venue the bot names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from math import copysign

from django.db import transaction

from bots.routing import order_book, order_venue
from bots.strategies import Bars, Decision, get_strategy
from bots.trading_rule import KILL_LEVELS, trading_block_reason
from controlplane.books import Book
from controlplane.errors import ErrorCode
from controlplane.trace import current_trace_id
from execution.marketdata.selectors import TickBars
from execution.orders.intents import LegSpec, submit_intent
from execution.risk.checks import AUTONOMY_CHECK, OrderRequest, RiskScope, Side, check_order
from integrations.safe_start import safe_start_blockers
from traces.models import ReasonCode, TickTrace
from traces.writer import TraceRow


@dataclass
class BatchResult:
    instrument: str
    timeframe: str
    as_of: datetime
    market_open: bool | None = None
    data_problem: str | None = None
    bots: int = 0
    skipped_already_ticked: int = 0
    decisions: int = 0
    no_trades: int = 0
    intents_created: int = 0
    errors: int = 0
    tenants_with_intents: set[int] = field(default_factory=set)
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "instrument": self.instrument,
            "timeframe": self.timeframe,
            "as_of": self.as_of.isoformat(),
            "market_open": self.market_open,
            "data_problem": self.data_problem,
            "bots": self.bots,
            "skipped_already_ticked": self.skipped_already_ticked,
            "decisions": self.decisions,
            "no_trades": self.no_trades,
            "intents_created": self.intents_created,
            "errors": self.errors,
            "reasons": dict(self.reasons),
        }


@dataclass(frozen=True)
class TickContext:
    """What one tenant's part of a batch shares across its bots."""

    bars: TickBars
    strategy_bars: Bars | None
    bar_ts: datetime
    context: str  # TickTrace.Context
    run_ref: int | None
    system_killed: bool
    tenant_killed: bool
    inputs: dict  # shared by every trace of the batch: never mutated, each position is added to a copy
    # The copy for each position (``_inputs``), shared by the traces of the bots holding it: one dict, and in the
    # trace writer one JSON text, per position instead of one per bot.
    inputs_at: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True)
class TickBot:
    """A running bot as the tick reads it: one row of the batch query. Building Django models for the thousand
    bots of a batch cost more than deciding for them, so the tick reads plain rows; the order path reads models.

    Read-only by convention, not ``frozen``: a frozen dataclass's generated ``__init__`` sets each of the sixteen
    fields through ``object.__setattr__``, nine times the cost of a plain one (about 4 us a bot, every bot, every
    tick)."""

    runner_id: int
    id: int
    tenant_id: int
    strategy: str
    parameters: dict
    risk_limits: dict
    venue: str
    stage: str
    autonomy_tier: str
    data_source: str
    killed: bool
    kill_reason: str
    reconcile_mismatch: bool
    already_ticked: bool
    paper_position: Decimal | None = None  # in the batch's instrument; None: no position row in that book
    live_position: Decimal | None = None

    def position(self, book: Book | None = None) -> Decimal:
        """The bot's position in the batch's instrument in the book its orders fill into (``order_book``; a caller
        deciding many bots may pass it, found once for each venue and stage)."""
        held = self.live_position if (book or order_book(self)) == Book.LIVE else self.paper_position
        return Decimal(0) if held is None else held


def no_trade(bot: TickBot, ctx: TickContext, reason_code: ReasonCode, /, **details) -> TraceRow:
    return _no_trade_row(bot, ctx, reason_code, details)


_NO_TRADE, _DECISION = TickTrace.Kind.NO_TRADE, TickTrace.Kind.DECISION  # an enum member's lookup costs 0.2 us


def _no_trade_row(
    bot: TickBot,
    ctx: TickContext,
    reason_code: ReasonCode,
    details: dict,
    *,
    signal: dict | None = None,
    position: Decimal | None = None,
    risk_checks: list | None = None,
) -> TraceRow:
    bars = ctx.bars
    # Positional, in TraceRow's field order: the keyword call cost twice as much, once per bot and tick.
    return TraceRow(
        _NO_TRADE,
        bot.id,
        bars.instrument.symbol,
        bars.timeframe,
        ctx.bar_ts,
        ctx.context,
        ctx.run_ref,
        reason_code,
        details,
        _inputs(ctx, position),
        signal or {},
        risk_checks or [],
        None,
        current_trace_id(),
    )


def for_bot(row: TraceRow, bot_id: int) -> TraceRow:
    """``row`` for another bot: every other field the same (the same objects, read-only like the row)."""
    return TraceRow(
        row.kind,
        bot_id,
        row.instrument,
        row.timeframe,
        row.bar_ts,
        row.context,
        row.run_ref,
        row.reason_code,
        row.details,
        row.inputs,
        row.signal,
        row.risk_checks,
        row.intent_id,
        row.trace_id,
    )


def _inputs(ctx: TickContext, position: Decimal | None = None) -> dict:
    """The batch's inputs with the bot's position: one dict per position held, shared by the bots holding it
    (a negative zero, whose JSON differs from zero's, gets its own)."""
    if position is None:
        return ctx.inputs
    held = float(position)
    key = held if held or copysign(1.0, held) > 0 else "-0"
    inputs = ctx.inputs_at.get(key)
    if inputs is None:
        inputs = ctx.inputs_at[key] = {**ctx.inputs, "position": held}
    return inputs


def batch_inputs(bars: TickBars) -> dict:
    """The inputs every bot of a batch decided on (each trace adds its own position)."""
    check = bars.check
    return {
        "as_of": bars.as_of.isoformat(),
        "latest_bar_ts": check.bar_ts.isoformat() if check.bar_ts else None,
        "close": check.close,
        "bars": len(bars.history),
    }


def _trading_block(bot: TickBot, ctx: TickContext) -> TraceRow | None:
    """The trading rule (bots.trading_rule) on the facts the batch read in bulk, as a no-trade, or None."""
    code = trading_block_reason(
        system_killed=ctx.system_killed,
        tenant_killed=ctx.tenant_killed,
        bot_killed=bot.killed,
        stage=bot.stage,
        reconcile_mismatch=bot.reconcile_mismatch,
    )
    if code is None:
        return None
    if code in KILL_LEVELS:
        details = {"level": KILL_LEVELS[code], "error_code": str(code)}
        if code == ErrorCode.BOT_KILLED:
            details["kill_reason"] = bot.kill_reason
        return no_trade(bot, ctx, ReasonCode.KILLED, **details)
    if code == ErrorCode.RECONCILE_MISMATCH:
        return no_trade(bot, ctx, ReasonCode.RECONCILE_MISMATCH, error_code=str(code))
    return no_trade(bot, ctx, ReasonCode.RETIRED, error_code=str(code))


def decide_for_bot(
    bot: TickBot,
    *,
    position: Decimal,
    scopes: list[RiskScope],
    ctx: TickContext,
    gate_cache: dict[tuple[str, str, str], list[dict]],
    result: BatchResult,
) -> TraceRow:
    """The whole decision for one bot, in the order an operator reads it: why not, or what it sent."""
    blocked = blocked_before_strategy(bot, ctx=ctx, gate_cache=gate_cache)
    if blocked is not None:
        return blocked
    decision = get_strategy(bot.strategy).decide(bot.parameters, ctx.strategy_bars, float(position))
    return act_on_decision(bot, decision, position=position, scopes=scopes, ctx=ctx, result=result)


def blocked_before_strategy(
    bot: TickBot, *, ctx: TickContext, gate_cache: dict[tuple[str, str, str], list[dict]]
) -> TraceRow | None:
    """Why the bot does not reach its strategy on this tick (kill switches, reconcile mismatch, integrations,
    market hours, the bars), as its no-trade row; None when its strategy decides."""
    blocked = _trading_block(bot, ctx)
    if blocked is not None:
        return blocked
    venue = order_venue(bot)
    gate_key = (venue, bot.data_source, bot.stage)
    if gate_key not in gate_cache:
        gate_cache[gate_key] = safe_start_blockers(venue=venue, data_source=bot.data_source, stage=bot.stage)
    if gate_cache[gate_key]:
        return no_trade(bot, ctx, ReasonCode.INTEGRATION_MISSING, blockers=gate_cache[gate_key])
    status = ctx.bars.status
    if not status.is_open:
        return no_trade(bot, ctx, ReasonCode.MARKET_CLOSED, next_open=status.next_open, session=status.session)
    check = ctx.bars.check
    if not check.ok:
        return no_trade(bot, ctx, ReasonCode(str(check.problem)), **check.details)
    return None


def gate_facts(bot: TickBot) -> tuple:
    """Everything of the bot ``blocked_before_strategy`` reads (with the batch's context): bots with the same facts
    get the same verdict, so a batch asks once per distinct facts whether they reach their strategy. A new check
    there reads its bot field here too."""
    return (bot.stage, bot.killed, bot.reconcile_mismatch, bot.venue, bot.data_source)


def act_on_decision(
    bot: TickBot,
    decision: Decision,
    *,
    position: Decimal,
    scopes: list[RiskScope] | None,
    ctx: TickContext,
    result: BatchResult,
) -> TraceRow:
    """What the bot does with its strategy's decision: no signal, already at target, refused by risk, or the
    intent it sends (its decision row). ``scopes`` may be None for a bot the caller knows sends nothing (no
    signal, or already at target); reaching the risk check without them is an error, never an unchecked order."""
    check = ctx.bars.check
    signal = {"target": decision.target, "reason": decision.reason, **decision.values}
    if decision.target is None:
        return _no_trade_row(
            bot, ctx, ReasonCode.NO_SIGNAL, {"strategy_reason": decision.reason}, signal=signal, position=position
        )
    delta = Decimal(repr(decision.target)) - position
    if delta == 0:
        return _no_trade_row(
            bot,
            ctx,
            ReasonCode.ALREADY_AT_TARGET,
            {"target": decision.target, "position": float(position)},
            signal=signal,
            position=position,
        )

    side = Side.BUY if delta > 0 else Side.SELL
    venue = order_venue(bot)
    instrument = ctx.bars.instrument
    order = OrderRequest(
        instrument=instrument.symbol,
        side=side,
        quantity=abs(delta),
        price=Decimal(repr(check.close)),
        at=ctx.bars.as_of,
        multiplier=instrument.multiplier,
    )
    if scopes is None:
        raise RuntimeError("the bot would send an order but its risk scopes were not read")
    risk = check_order(order, scopes)
    checks = [c.as_dict() for c in risk.checks]
    if not risk.passed:
        refusals = [c.as_dict() for c in risk.refusals]
        if any(c.limit == AUTONOMY_CHECK for c in risk.refusals):
            return _no_trade_row(
                bot,
                ctx,
                ReasonCode.AUTONOMY_NOT_ALLOWED,
                {"error_code": str(ErrorCode.AUTONOMY_NOT_ALLOWED), "refusals": refusals},
                signal=signal,
                position=position,
                risk_checks=checks,
            )
        return _no_trade_row(
            bot,
            ctx,
            ReasonCode.RISK_BLOCKED,
            {"refusals": refusals},
            signal=signal,
            position=position,
            risk_checks=checks,
        )

    intent_id = _submit(bot, venue=venue, side=side, quantity=abs(delta), ctx=ctx, result=result, checks=checks)
    return TraceRow(
        kind=_DECISION,
        bot_id=bot.id,
        instrument=instrument.symbol,
        timeframe=ctx.bars.timeframe,
        bar_ts=ctx.bar_ts,
        context=ctx.context,
        run_ref=ctx.run_ref,
        inputs=_inputs(ctx, position),
        signal=signal,
        risk_checks=checks,
        intent_id=intent_id,
        trace_id=current_trace_id(),
        details={"side": side.value, "quantity": float(abs(delta)), "venue": venue},
    )


def sends_order(decision: Decision, position: Decimal) -> bool:
    """Whether ``act_on_decision`` gets as far as an order (and so needs the bot's risk scopes): a target that is
    not the position. A target that cannot even be read as a number does too, so that its error is raised there."""
    if decision.target is None:
        return False
    try:
        return Decimal(repr(decision.target)) != position
    except Exception:
        return True


def idempotency_key(bot: TickBot, ctx: TickContext) -> str:
    """One intent per bot, instrument and bar: a bot on two instruments trades each on the same bar."""
    prefix = "tick" if ctx.run_ref is None else f"{ctx.context}:{ctx.run_ref}"
    return f"{prefix}:{bot.id}:{ctx.bars.instrument.symbol}:{ctx.bars.timeframe}:{ctx.bar_ts.isoformat()}"


def _submit(
    bot: TickBot,
    *,
    venue: str,
    side: Side,
    quantity: Decimal,
    ctx: TickContext,
    result: BatchResult,
    checks: list[dict],
) -> int:
    with transaction.atomic():  # a savepoint: a failed submit leaves the tenant's batch usable
        outcome = submit_intent(
            bot=bot,
            legs=[LegSpec(venue=venue, symbol=ctx.bars.instrument.symbol, side=side.value, quantity=quantity)],
            idempotency_key=idempotency_key(bot, ctx),
            source="replay" if ctx.run_ref else "tick",
            bar_ts=ctx.bar_ts,
            actor_name="tick",
            risk_checked=checks,
        )
    if outcome.created:
        result.intents_created += 1
    return outcome.intent.id
