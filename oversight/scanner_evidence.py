"""A scanner bot's evidence for the gates (issue 18): its paper trading on recorded quotes.

A scanner (a quote strategy) has no bars, so a bar backtest refuses it and the gates that read one could never
pass. For a scanner the quote replay stands where the backtest stands: a replay runner (``Runner.Mode.REPLAY``)
that ran the same ``scan_tenant`` over stored quotes, sending its intents through the OMS to the sim twins
(``execution.arbitrage.replay``). The evidence is measured from what that replay left in the database, never from
its summary: scans, failed scans, UTC days of scans that saw usable quotes, intents, orders, rejected orders,
fills, and the realized total of its settled ``arb_pnl`` (spot) or ``basis_pnl`` (funding) rows (intents still
working or positions still open when the replay ended are counted as unsettled and shown, not guessed). The thresholds
are settings (``SCANNER_GATE_*``, README "Scanner gates"). The BACKTESTED gate (oversight.gates) and autonomy's
T1 gate (oversight.autonomy) both ask ``quote_replay_judgement``: one rule, one place.

Parity: the live paper scans' intents against the replay's at the scan instants both timelines scanned (the replay
equality the scanner tests hold, measured on the bot's own record): matched / the larger of the two counts, or
None with the reason when there is nothing to compare.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import F
from django.db.models.functions import TruncDate

from bots.models import Bot, Runner, Stage
from bots.routing import integration_blockers
from bots.strategies import get_strategy, is_quote_strategy
from controlplane.errors import ErrorCode
from execution.arbitrage.scanner import SCAN_INSTRUMENT, live_venue_blockers, live_venues
from execution.models import ArbPnl, BasisPnl, Fill, FundingPosition, IntentLeg, Order, TradeIntent
from traces.models import ReasonCode, TickTrace

# Scans that could not look at the market: they do not count as days of quotes covered.
BLIND_SCAN_REASONS = (
    ReasonCode.DATA_STALE,
    ReasonCode.DATA_UNAVAILABLE,
    ReasonCode.TICK_ERROR,
    ReasonCode.KILLED,
    ReasonCode.INTEGRATION_MISSING,
    ReasonCode.RETIRED,
    ReasonCode.RECONCILE_MISMATCH,
)
GATE_NAME = "quote_replay_passed"


@dataclass(frozen=True)
class QuoteReplayEvidence:
    runner_id: int
    start: str
    end: str
    scans: int
    failed_scans: int
    quote_days: int
    intents: int
    orders: int
    rejected_orders: int
    fills: int
    pnl_table: str
    settled: int
    unsettled: int
    realized_pnl: str | None  # of the settled rows; None: unknown (a fee not reported, or nothing settled)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Judgement:
    passed: bool
    message: str
    suggested_fix: str
    evidence: dict | None
    problems: list[str] = field(default_factory=list)
    required: str = ""
    checks: list[dict] = field(default_factory=list)  # each threshold, measured (oversight.scanner_evidence)


def requirements() -> str:
    return (
        f">= {settings.SCANNER_GATE_MIN_QUOTE_DAYS} days of quotes, >= {settings.SCANNER_GATE_MIN_INTENTS} "
        f"intents, rejected orders <= {settings.SCANNER_GATE_MAX_REJECTED_LEG_SHARE:.0%}, 0 failed scans, realized "
        f"(settled intents) >= {settings.SCANNER_GATE_MIN_REALIZED_PNL:g}"
    )


def live_integration_blockers(bot: Bot) -> list[dict]:
    """What keeps the bot's live integrations from being usable: a bar bot's order venue and data source
    (bots.routing); a scanner's every live venue of its instruments (its ``venue`` field is not where its legs
    go), the scan's own check. A scanner mapped at no venue of its kind is blocked, never vacuously ready."""
    if not is_quote_strategy(get_strategy(bot.strategy)):
        return integration_blockers(bot, stage=Stage.LIVE)
    if not live_venues(bot):
        return [
            {
                "provider": "venues",
                "code": str(ErrorCode.INSTRUMENT_NOT_MAPPED),
                "message": "none of the scanner's instruments is mapped at a live venue of its kind",
                "suggested_fix": "Map the instruments' venue symbols (Instrument.venue_symbols) at the venues "
                "the scanner should trade.",
            }
        ]
    return live_venue_blockers(bot, stage=Stage.LIVE)


def latest_quote_replay(bot: Bot) -> Runner | None:
    """The bot's latest replay runner of its current parameters that reached the end of its range."""
    return (
        Runner.objects.filter(
            bot=bot,
            mode=Runner.Mode.REPLAY,
            status=Runner.Status.STOPPED,
            parameters_hash=bot.parameters_hash,
            replay_cursor__gte=F("replay_end"),
        )
        .order_by("-id")
        .first()
    )


def replay_intents(bot: Bot, runner: Runner):
    """The intents a replay runner's scans emitted (their keys carry the run: ``replay:<runner>:``)."""
    return TradeIntent.objects.filter(
        bot=bot,
        source=TradeIntent.Source.REPLAY,
        idempotency_key__startswith=f"{TickTrace.Context.REPLAY}:{runner.id}:",
    )


def quote_replay_evidence(bot: Bot, runner: Runner) -> QuoteReplayEvidence:
    """What ``runner``'s replay of ``bot`` did, measured from its traces, intents, orders, fills and PnL rows."""
    traces = TickTrace.objects.filter(
        bot_id=bot.id, context=TickTrace.Context.REPLAY, run_ref=runner.id, instrument=SCAN_INSTRUMENT
    )
    quote_days = (
        traces.exclude(reason_code__in=BLIND_SCAN_REASONS)
        .annotate(day=TruncDate("bar_ts"))
        .values("day")
        .distinct()
        .count()
    )
    intents = replay_intents(bot, runner)
    orders = Order.objects.filter(intent__in=intents)
    if get_strategy(bot.strategy).market_kind == "funding":
        # A position is settled once CLOSED; its total is null then only when a fee was not reported (unknown).
        table = "basis_pnl"
        positions = FundingPosition.objects.filter(bot=bot, run_ref=runner.id)
        rows = list(BasisPnl.objects.filter(position__in=positions).values_list("status", "total"))
        settled = [total for status, total in rows if status == FundingPosition.Status.CLOSED]
        unsettled = len(rows) - len(settled)
    else:
        table = "arb_pnl"
        settled = list(ArbPnl.objects.filter(intent__in=intents).values_list("realized_edge", flat=True))
        unsettled = intents.count() - len(settled)
    known = settled and all(value is not None for value in settled)
    realized = str(sum(settled, Decimal(0))) if known else None
    return QuoteReplayEvidence(
        runner_id=runner.id,
        start=runner.replay_start.isoformat(),
        end=runner.replay_end.isoformat(),
        scans=traces.count(),
        failed_scans=traces.filter(reason_code=ReasonCode.TICK_ERROR).count(),
        quote_days=quote_days,
        intents=intents.count(),
        orders=orders.count(),
        rejected_orders=orders.filter(status=Order.Status.REJECTED).count(),
        fills=Fill.objects.filter(order__in=orders).count(),
        pnl_table=table,
        settled=len(settled),
        unsettled=unsettled,
        realized_pnl=realized,
    )


def evidence_checks(evidence: QuoteReplayEvidence) -> list[dict]:
    """Each threshold with the measured value, whether it holds, and what to say when it does not."""
    minimum_pnl = settings.SCANNER_GATE_MIN_REALIZED_PNL
    share = evidence.rejected_orders / evidence.orders if evidence.orders else 0.0
    realized = evidence.realized_pnl
    return [
        {
            "check": "quote_days",
            "value": evidence.quote_days,
            "required": f">= {settings.SCANNER_GATE_MIN_QUOTE_DAYS}",
            "passed": evidence.quote_days >= settings.SCANNER_GATE_MIN_QUOTE_DAYS,
            "problem": f"{evidence.quote_days} days of quotes (need {settings.SCANNER_GATE_MIN_QUOTE_DAYS})",
        },
        {
            "check": "intents",
            "value": evidence.intents,
            "required": f">= {settings.SCANNER_GATE_MIN_INTENTS}",
            "passed": evidence.intents >= settings.SCANNER_GATE_MIN_INTENTS,
            "problem": f"{evidence.intents} intents (need {settings.SCANNER_GATE_MIN_INTENTS})",
        },
        {
            "check": "failed_scans",
            "value": evidence.failed_scans,
            "required": "0",
            "passed": evidence.failed_scans == 0,
            "problem": f"{evidence.failed_scans} failed scans (need 0)",
        },
        {
            "check": "rejected_orders",
            "value": f"{evidence.rejected_orders} of {evidence.orders}",
            "required": f"<= {settings.SCANNER_GATE_MAX_REJECTED_LEG_SHARE:.0%}",
            "passed": share <= settings.SCANNER_GATE_MAX_REJECTED_LEG_SHARE,
            "problem": f"{evidence.rejected_orders} of {evidence.orders} orders rejected "
            f"(at most {settings.SCANNER_GATE_MAX_REJECTED_LEG_SHARE:.0%})",
        },
        {
            "check": f"realized_{evidence.pnl_table}",
            "value": realized,
            "required": f">= {minimum_pnl:g} over {evidence.settled} settled ({evidence.unsettled} unsettled)",
            "passed": realized is not None and Decimal(realized) >= Decimal(str(minimum_pnl)),
            "problem": f"realized {evidence.pnl_table} unknown (nothing settled, or a fee was not reported)"
            if realized is None
            else f"realized {evidence.pnl_table} {realized} (need >= {minimum_pnl:g})",
        },
    ]


def evidence_problems(evidence: QuoteReplayEvidence) -> list[str]:
    """Each threshold the evidence misses, with the measured value."""
    return [check["problem"] for check in evidence_checks(evidence) if not check["passed"]]


def quote_replay_judgement(bot: Bot) -> Judgement:
    """Whether the scanner's latest finished quote replay of its current parameters meets the thresholds."""
    fix = (
        f"Replay the scanner over recorded quotes: POST /api/runners/start with bot_id={bot.id}, mode=replay, "
        f"replay_start and replay_end spanning at least {settings.SCANNER_GATE_MIN_QUOTE_DAYS} days of stored quotes, and let it "
        "finish."
    )
    runner = latest_quote_replay(bot)
    if runner is None:
        return Judgement(
            False,
            "No finished quote replay of the scanner's current parameters: a scanner's evidence is its paper "
            "trading on recorded quotes (a bar backtest cannot run a quote strategy).",
            fix,
            None,
            ["no finished quote replay"],
            requirements(),
        )
    evidence = quote_replay_evidence(bot, runner)
    checks = evidence_checks(evidence)
    problems = [check["problem"] for check in checks if not check["passed"]]
    if problems:
        return Judgement(
            False,
            f"Quote replay {runner.id} falls short: " + ", ".join(problems) + ".",
            fix,
            evidence.as_dict(),
            problems,
            requirements(),
            checks,
        )
    return Judgement(
        True,
        f"Quote replay {runner.id} passed: {evidence.intents} intents over {evidence.quote_days} days of quotes, "
        f"{evidence.rejected_orders} of {evidence.orders} orders rejected, realized {evidence.pnl_table} "
        f"{evidence.realized_pnl}.",
        "",
        evidence.as_dict(),
        [],
        requirements(),
        checks,
    )


def _intent_key(intent_legs: list[IntentLeg], bar_ts) -> tuple:
    return (
        bar_ts,
        tuple(
            (leg.venue, leg.instrument_id, leg.side, leg.quantity, leg.order_type, leg.limit_price)
            for leg in intent_legs
        ),
    )


def _intent_keys(intents) -> list[tuple]:
    by_intent: dict[int, list] = {}
    bar_ts = {}
    for intent in intents:
        bar_ts[intent.id] = intent.bar_ts
        by_intent[intent.id] = []
    for leg in IntentLeg.objects.filter(intent_id__in=list(by_intent)).order_by("intent_id", "leg_index"):
        by_intent[leg.intent_id].append(leg)
    return [_intent_key(legs, bar_ts[intent_id]) for intent_id, legs in by_intent.items()]


def scanner_paper_parity(bot: Bot) -> dict:
    """The live paper scans' intents against the latest finished quote replay's, at the scan instants both
    timelines scanned: matched intents (same instant, same legs at the same sim twins, sizes and limits) over the
    larger count. None, with the reason, when there is no replay or nothing to compare."""
    runner = latest_quote_replay(bot)
    if runner is None:
        return {"parity": None, "reason": "no finished replay over recorded quotes of the scanner's current parameters"}
    live_instants = set(
        TickTrace.objects.filter(
            bot_id=bot.id,
            context=TickTrace.Context.TICK,
            instrument=SCAN_INSTRUMENT,
            bar_ts__gte=runner.replay_start,
            bar_ts__lte=runner.replay_end,
            inputs__book="paper",
        ).values_list("bar_ts", flat=True)
    )
    replay_instants = set(
        TickTrace.objects.filter(
            bot_id=bot.id, context=TickTrace.Context.REPLAY, run_ref=runner.id, instrument=SCAN_INSTRUMENT
        ).values_list("bar_ts", flat=True)
    )
    common = live_instants & replay_instants
    base = {"replay_runner_id": runner.id, "common_scans": len(common)}
    if not common:
        return {
            "parity": None,
            **base,
            "reason": f"quote replay {runner.id} shares no scan instant with the bot's paper scans: replay the "
            "window the bot paper-traded",
        }
    live = _intent_keys(
        TradeIntent.objects.filter(bot=bot, source=TradeIntent.Source.TICK, bar_ts__in=common).order_by("id")
    )
    replayed = _intent_keys(replay_intents(bot, runner).filter(bar_ts__in=common).order_by("id"))
    denominator = max(len(live), len(replayed))
    if not denominator:
        return {
            "parity": None,
            **base,
            "paper_intents": 0,
            "replay_intents": 0,
            "reason": f"no intents in the {len(common)} common scans: nothing to compare",
        }
    matched = len(set(live) & set(replayed))
    return {
        "parity": round(matched / denominator, 6),
        **base,
        "paper_intents": len(live),
        "replay_intents": len(replayed),
        "matched_intents": matched,
    }
