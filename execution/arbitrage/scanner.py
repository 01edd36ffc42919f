"""One scan of a tenant's scanner bots: why a bot may not act, or what it found and sent.

The order an operator reads a trace in is the bar tick's (execution.tick.decide): the trading rule (retired, kill
switches, reconcile mismatch; ``bots.trading_rule``, the same function), the integrations gate
(``safe_start_blockers``, the same call), the market data (``usable_quotes``: fail closed), the strategy's scan,
the inventory and risk limits (``risk_refusal``, the checks the OMS runs again before sending), then the intent.
Exactly one trace per bot per scan (instrument ``*``: a scan covers all the bot's instruments; the best
opportunity's numbers are in ``signal``), written in bulk; a re-run of the same scan finds the trace and skips the
bot, and the intent's idempotency key (bot, instrument, venue pair, opportunity window) makes a rescan of the same
opportunity create nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bots.models import Bot, GlobalKillSwitch, Runner, TenantKillSwitch
from bots.strategies import IntentPlan, MarketSnapshot, ScanResult, get_strategy, quote_strategy_names
from bots.trading_rule import KILL_LEVELS, trading_block_reason
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.trace import current_trace_id
from execution.arbitrage.funding_scan import funding_market_snapshot, record_funding_scan, with_funding_positions
from execution.arbitrage.snapshot import book_for, book_inventory, order_venue, spot_snapshot
from execution.models import ArbSpread, Instrument, TradeIntent
from execution.orders.intents import LegSpec, risk_refusal, submit_intent
from execution.orders.quote_fills import match_quote_orders
from integrations.safe_start import SIM_VENUE, safe_start_blockers
from integrations.venue_symbols import CCXT_MARKET_TYPES
from traces.models import ReasonCode, TickTrace
from traces.writer import TraceRow, write_traces

logger = logging.getLogger(__name__)

SCAN_INSTRUMENT = "*"  # a scan's trace covers every instrument of the bot
SCAN_TIMEFRAME = "quotes"


def scan_as_of(at: datetime, interval_seconds: float | None = None) -> datetime:
    """The scan grid point at or before ``at`` (whole milliseconds of the scan interval): a re-run of the same
    scan (the task delivered twice) answers for the same instant and finds its traces."""
    step = max(int((interval_seconds or settings.ARB_SCAN_INTERVAL_SECONDS) * 1000), 1)
    ms = int(at.timestamp() * 1000)
    return datetime.fromtimestamp((ms - ms % step) / 1000, tz=UTC)


@dataclass
class ScanTotals:
    bots: int = 0
    skipped_already_scanned: int = 0
    intents_created: int = 0
    spreads: int = 0
    errors: int = 0
    fills: int = 0
    reasons: dict = field(default_factory=dict)
    intent_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "bots": self.bots,
            "skipped_already_scanned": self.skipped_already_scanned,
            "intents_created": self.intents_created,
            "spreads": self.spreads,
            "errors": self.errors,
            "fills": self.fills,
            "reasons": dict(self.reasons),
        }


@dataclass
class ScanContext:
    as_of: datetime
    context: str = TickTrace.Context.TICK
    run_ref: int | None = None
    system_killed: bool = False
    tenant_killed: bool = False
    snapshots: dict = field(default_factory=dict)  # (kind, symbols) -> MarketSnapshot, shared by the tenant's bots
    inventories: dict = field(default_factory=dict)  # book -> Inventory

    @property
    def replay(self) -> bool:
        return self.context == TickTrace.Context.REPLAY

    def snapshot(self, kind: str, symbols: Iterable[str]) -> MarketSnapshot:
        key = (kind, frozenset(symbols))
        if key not in self.snapshots:
            self.snapshots[key] = SNAPSHOT_BUILDERS[kind](symbols=key[1], as_of=self.as_of)
        return self.snapshots[key]


_KILL_SWITCHES_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {GlobalKillSwitch._meta.db_table} WHERE id = %s AND killed),
       EXISTS (SELECT 1 FROM {TenantKillSwitch._meta.db_table} WHERE tenant_id = %s AND killed)
"""


def running_scanner_bots() -> list[Bot]:
    """The current tenant's bots that have a RUNNING live-mode runner and a quote strategy."""
    return list(
        Bot.objects.filter(
            strategy__in=quote_strategy_names(), runners__status=Runner.Status.RUNNING, runners__mode=Runner.Mode.LIVE
        )
        .distinct()
        .order_by("id")
    )


def scan_tenant(
    *,
    as_of: datetime,
    bots: list[Bot] | None = None,
    context: str = TickTrace.Context.TICK,
    run_ref: int | None = None,
    totals: ScanTotals | None = None,
) -> ScanTotals:
    """Scan the current tenant's running scanner bots (or ``bots``) as of ``as_of``, in one transaction: paper
    fills first (working sim-twin orders against the quotes as of now), then per bot one trace, its spreads and at
    most one intent; then the runners' heartbeat. The caller hands created intents to the OMS."""
    totals = totals or ScanTotals()
    ctx = ScanContext(as_of=as_of, context=context, run_ref=run_ref)
    with transaction.atomic():
        totals.fills += match_quote_orders(at=as_of, replay=ctx.replay)
        bots = running_scanner_bots() if bots is None else bots
        done = set(
            TickTrace.objects.filter(
                bot_id__in=[b.id for b in bots],
                instrument=SCAN_INSTRUMENT,
                bar_ts=as_of,
                context=context,
                run_ref=run_ref,
            ).values_list("bot_id", flat=True)
        )
        todo = [b for b in bots if b.id not in done]
        totals.skipped_already_scanned += len(bots) - len(todo)
        if not todo:
            return totals
        with connection.cursor() as cursor:
            cursor.execute(_KILL_SWITCHES_SQL, [GlobalKillSwitch.SINGLETON_ID, tenancy.require_tenant_id()])
            ctx.system_killed, ctx.tenant_killed = cursor.fetchone()
        rows, failed = [], []
        for bot in todo:
            try:
                row = scan_bot(bot, ctx, totals)
            except Exception as exc:  # one bot's failure must not take the others down; traced and counted
                logger.exception("scan failed for bot", extra={"bot_id": bot.id})
                known = isinstance(exc, ControlPlaneError)
                row = _no_trade(
                    bot,
                    ctx,
                    ReasonCode.TICK_ERROR,
                    {
                        "error_code": str(exc.code if known else ErrorCode.INTERNAL_ERROR),
                        "error": exc.message if known else type(exc).__name__,
                        "error_details": exc.details if known else None,
                    },
                )
                failed.append(bot.id)
                totals.errors += 1
            rows.append(row)
            reason = row.reason_code or "TRADED"
            totals.reasons[reason] = totals.reasons.get(reason, 0) + 1
        totals.bots += len(rows)
        write_traces(rows)
        if context == TickTrace.Context.TICK:
            now = timezone.now()
            Runner.objects.filter(bot_id__in=[b.id for b in todo], status=Runner.Status.RUNNING).update(
                last_heartbeat_at=now, last_tick_at=now
            )
    return totals


def scan_bot(bot: Bot, ctx: ScanContext, totals: ScanTotals) -> TraceRow:
    """One bot's scan, in the order an operator reads it."""
    code = trading_block_reason(
        system_killed=ctx.system_killed,
        tenant_killed=ctx.tenant_killed,
        bot_killed=bot.killed,
        stage=bot.stage,
        reconcile_mismatch=bot.reconcile_mismatch,
    )
    if code is not None:
        if code in KILL_LEVELS:
            details = {"level": KILL_LEVELS[code], "error_code": str(code)}
            if code == ErrorCode.BOT_KILLED:
                details["kill_reason"] = bot.kill_reason
            return _no_trade(bot, ctx, ReasonCode.KILLED, details)
        reason = ReasonCode.RECONCILE_MISMATCH if code == ErrorCode.RECONCILE_MISMATCH else ReasonCode.RETIRED
        return _no_trade(bot, ctx, reason, {"error_code": str(code)})
    strategy = get_strategy(bot.strategy)
    params = strategy.validate(bot.parameters)
    book = book_for(bot.stage, replay=ctx.replay)
    if book == "live":
        blockers = live_venue_blockers(bot, stage=bot.stage)
    else:
        blockers = safe_start_blockers(venue=SIM_VENUE, data_source=bot.data_source, stage=bot.stage)
    if blockers:
        return _no_trade(bot, ctx, ReasonCode.INTEGRATION_MISSING, {"blockers": blockers})

    market = ctx.snapshot(strategy.market_kind, bot.instruments)
    market = BOT_STATE_READERS.get(strategy.market_kind, _no_bot_state)(bot, market, book=book, run_ref=ctx.run_ref)
    record = OPPORTUNITY_RECORDERS[strategy.market_kind]
    if book not in ctx.inventories:
        ctx.inventories[book] = book_inventory(book)
    result = strategy.scan(params, market, ctx.inventories[book], ctx.as_of)
    inputs = _inputs(ctx, market, book)
    signal = result.best.summary() if result.best else {}
    if result.plan is None:
        record(bot, ctx, result, market, intent_id=None, totals=totals)
        return _no_trade(bot, ctx, ReasonCode(result.reason_code), result.details, inputs=inputs, signal=signal)

    plan = result.plan
    key = idempotency_key(bot, ctx, plan)
    existing = TradeIntent.objects.filter(idempotency_key=key).values_list("id", flat=True).first()
    if existing is not None:  # the same opportunity, rescanned within its window: nothing new
        record(bot, ctx, result, market, intent_id=None, totals=totals, already=existing)
        return _no_trade(
            bot,
            ctx,
            ReasonCode.COOLDOWN,
            {**result.details, "already_acted": {"intent_id": existing, "idempotency_key": key}},
            inputs=inputs,
            signal=signal,
        )
    legs = [
        LegSpec(
            venue=order_venue(leg.venue, stage=bot.stage, replay=ctx.replay),
            symbol=leg.symbol,
            side=leg.side,
            quantity=leg.quantity,
            order_type="limit",
            limit_price=leg.limit_price,
        )
        for leg in plan.legs
    ]
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in={leg.symbol for leg in legs})}
    refusal, checks, _ = risk_refusal(
        bot=bot, legs=[(leg, instruments[leg.symbol]) for leg in legs], bar_ts=None, at=ctx.as_of
    )
    if refusal is not None:
        record(bot, ctx, result, market, intent_id=None, totals=totals, refused=refusal)
        return _no_trade(
            bot,
            ctx,
            ReasonCode.AUTONOMY_NOT_ALLOWED if refusal.get("autonomy") else ReasonCode.RISK_BLOCKED,
            {**result.details, "refusal": refusal},
            inputs=inputs,
            signal=signal,
            risk_checks=checks,
        )
    with transaction.atomic():  # a savepoint: a failed submit leaves the tenant's scan usable
        outcome = submit_intent(
            bot=bot,
            legs=legs,
            idempotency_key=key,
            source=TradeIntent.Source.REPLAY if ctx.replay else TradeIntent.Source.TICK,
            bar_ts=ctx.as_of,
            actor_name="scan",
            failure_policy=plan.failure_policy,
            risk_checked=checks,
        )
    if outcome.created:
        totals.intents_created += 1
        totals.intent_ids.append(outcome.intent.id)
    record(bot, ctx, result, market, intent_id=outcome.intent.id, totals=totals)
    return TraceRow(
        kind=TickTrace.Kind.DECISION,
        bot_id=bot.id,
        instrument=SCAN_INSTRUMENT,
        timeframe=SCAN_TIMEFRAME,
        bar_ts=ctx.as_of,
        context=ctx.context,
        run_ref=ctx.run_ref,
        inputs=inputs,
        signal=signal,
        risk_checks=checks,
        intent_id=outcome.intent.id,
        trace_id=current_trace_id(),
        details={
            **result.details,
            "legs": [{**leg.as_dict(), "order_venue": spec.venue} for leg, spec in zip(plan.legs, legs)],
            "idempotency_key": key,
            "window_start": plan.window_start.isoformat(),
            "failure_policy": plan.failure_policy,
        },
    )


def live_venues(bot: Bot) -> list[str]:
    """The venues a LIVE scanner trades at: each venue its instruments are mapped at whose market type is the
    strategy's kind (a spot scanner never needs a perpetual venue's key)."""
    kind = get_strategy(bot.strategy).market_kind
    return sorted(
        {
            v
            for i in Instrument.objects.filter(symbol__in=bot.instruments)
            for v in i.venue_symbols
            if CCXT_MARKET_TYPES.get(v) == kind or kind not in ("spot", "swap")
        }
    )


def live_venue_blockers(bot: Bot, *, stage: str) -> list[dict]:
    """What keeps a scanner's live venues (and data source) from being usable at ``stage``: the scan's own check
    when LIVE, and the promotion gate's to LIVE (oversight.gates), so both ask the same venues."""
    return [b for v in live_venues(bot) for b in safe_start_blockers(venue=v, data_source=bot.data_source, stage=stage)]


def idempotency_key(bot: Bot, ctx: ScanContext, plan: IntentPlan) -> str:
    """One intent per bot, instrument, venue pair and opportunity window."""
    prefix = "arb" if ctx.run_ref is None else f"{ctx.context}:{ctx.run_ref}:arb"
    return f"{prefix}:{bot.id}:{plan.idempotency_scope()}"


def _inputs(ctx: ScanContext, market: MarketSnapshot, book: str) -> dict:
    return {
        "as_of": ctx.as_of.isoformat(),
        "book": book,
        "quotes": len(market.quotes),
        "max_quote_age_ms": max((q.age_ms for q in market.quotes), default=None),
        "missing_quotes": len(market.missing),
        "fee_sources": dict(market.fee_sources),
    }


def _no_trade(
    bot: Bot,
    ctx: ScanContext,
    reason: ReasonCode,
    details: dict,
    *,
    inputs: dict | None = None,
    signal: dict | None = None,
    risk_checks: list | None = None,
) -> TraceRow:
    return TraceRow(
        kind=TickTrace.Kind.NO_TRADE,
        bot_id=bot.id,
        instrument=SCAN_INSTRUMENT,
        timeframe=SCAN_TIMEFRAME,
        bar_ts=ctx.as_of,
        context=ctx.context,
        run_ref=ctx.run_ref,
        reason_code=reason,
        details=details,
        inputs=inputs or {"as_of": ctx.as_of.isoformat()},
        signal=signal or {},
        risk_checks=risk_checks or [],
        trace_id=current_trace_id(),
    )


def _record_spreads(
    bot: Bot,
    ctx: ScanContext,
    result: ScanResult,
    market: MarketSnapshot,
    *,
    intent_id: int | None,
    totals: ScanTotals,
    already: int | None = None,
    refused: dict | None = None,
) -> None:
    """The scan's opportunities as ``arb_spreads`` rows (one insert; a re-run of the scan adds nothing): every
    pair with a positive net edge at its priced size (acted on, or why not: threshold, inventory, not the best,
    risk), and the scan's best pair whatever its edge, so each scan that priced anything leaves its best. Pairs
    whose gross spread does not pay their costs are counted in the trace (``priced``), not stored: at a scan every
    two seconds over 50 instruments and 4 venues they would be ~10 million rows a day per bot."""
    columns: dict[str, list] = {name: [] for name, _ in _SPREAD_ARRAYS}
    for o in result.opportunities:
        if not (o is result.best or o.acted or (o.numbers.get("net_edge") or 0) > 0):
            continue
        n = o.numbers
        why_not = o.why_not
        if o.acted and already is not None:
            why_not = f"already_acted: intent {already} in this window"
        elif o.acted and refused is not None:
            why_not = f"risk: {refused.get('limit')}"
        acted = o.acted and intent_id is not None
        sources = {v: market.fee_sources.get(v, "unknown") for v in (o.venues["buy"], o.venues["sell"])}
        for name, value in (
            ("instrument", o.symbol),
            ("buy_venue", o.venues["buy"]),
            ("sell_venue", o.venues["sell"]),
            ("buy_price", n["buy_price"]),
            ("sell_price", n["sell_price"]),
            ("gross_spread", n["gross_spread"]),
            ("gross_spread_bps", _bps(n["gross_spread_bps"])),
            ("buy_fee", _amount(n.get("buy_fee"))),
            ("sell_fee", _amount(n.get("sell_fee"))),
            ("fee_sources", json.dumps(sources)),
            ("expected_slippage", _amount(n.get("expected_slippage"))),
            ("net_edge", _amount(n.get("net_edge"))),
            ("net_edge_bps", _bps(n.get("net_edge_bps"))),
            ("priced_size", n.get("priced_size")),
            ("quoted_size", n["quoted_size"]),
            ("executable_size", n.get("executable_size")),
            ("acted", acted),
            ("why_not", why_not[:200]),
            ("intent_id", intent_id if acted else None),
        ):
            columns[name].append(value)
    if not columns["instrument"]:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SPREADS_SQL,
            [bot.tenant_id, bot.id, ctx.as_of, ctx.context, ctx.run_ref, current_trace_id()]
            + [columns[name] for name, _ in _SPREAD_ARRAYS],
        )
    totals.spreads += len(columns["instrument"])


# One statement per scan, whatever the number of rows: the columns as arrays (unnest), so a scan over 50
# instruments and 4 venues pays one round trip and no per-row parameter, as bulk_create's VALUES would.
_SPREAD_ARRAYS = (
    ("instrument", "text"),
    ("buy_venue", "text"),
    ("sell_venue", "text"),
    ("buy_price", "numeric"),
    ("sell_price", "numeric"),
    ("gross_spread", "numeric"),
    ("gross_spread_bps", "numeric"),
    ("buy_fee", "numeric"),
    ("sell_fee", "numeric"),
    ("fee_sources", "text"),
    ("expected_slippage", "numeric"),
    ("net_edge", "numeric"),
    ("net_edge_bps", "numeric"),
    ("priced_size", "numeric"),
    ("quoted_size", "numeric"),
    ("executable_size", "numeric"),
    ("acted", "boolean"),
    ("why_not", "text"),
    ("intent_id", "bigint"),
)
_INSERT_SPREADS_SQL = f"""
INSERT INTO {ArbSpread._meta.db_table} (tenant_id, bot_id, scanned_at, context, run_ref, trace_id, created_at,
    {", ".join(name for name, _ in _SPREAD_ARRAYS)})
SELECT %s, %s, %s, %s, %s, %s, now(), {
    ", ".join(f"u.{name}::jsonb" if name == "fee_sources" else f"u.{name}" for name, _ in _SPREAD_ARRAYS)
}
FROM unnest({", ".join(f"%s::{kind}[]" for _, kind in _SPREAD_ARRAYS)})
     AS u ({", ".join(name for name, _ in _SPREAD_ARRAYS)})
ON CONFLICT ON CONSTRAINT arbspread_one_per_scan_pair DO NOTHING
"""


# Per strategy market kind (QuoteStrategy.market_kind): what gathers its snapshot and what stores its priced
# opportunities (called with bot, ctx, result, market, intent_id=..., totals=..., already=..., refused=...). A
# scanner of another kind adds its pair here, in this layer.
def _no_bot_state(bot: Bot, market: MarketSnapshot, **_) -> MarketSnapshot:
    return market


SNAPSHOT_BUILDERS = {"spot": spot_snapshot, "funding": funding_market_snapshot}
OPPORTUNITY_RECORDERS = {"spot": _record_spreads, "funding": record_funding_scan}
# What a scan reads of the bot's own state besides its inventory, per market kind (not shared between the tenant's
# bots as the market snapshot is): a funding scanner's open positions.
BOT_STATE_READERS = {"funding": with_funding_positions}


def _amount(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("1e-10"))


def _bps(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.0001"))
