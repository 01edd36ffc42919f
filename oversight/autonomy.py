"""Autonomy scores: all the evidence about a bot, mapped to a tier through documented gates.

T0 locked, T1 paper only, T2 live with reduced limits, T3 live. A tier is granted when every gate of it and of the
tiers below passes; each gate records the value that decided it. Missing evidence fails its gate (fail closed:
no paper record is not a good paper record). The bot's ``autonomy_tier`` is set through
``bots.services.bot_set_autonomy_tier`` (audited), and the gate to LIVE requires T2 or better. A LIVE bot scored
below T2 is put in REDUCE_ONLY at once, with a risk incident and an alert; the risk state (execution.risk.state)
also scales a T2 bot's limits by ``AUTONOMY_T2_LIMIT_FACTOR`` and keeps any LIVE bot below T2 reduce-only.

Paper parity: the bot's PAPER fills in the paper book (sim venue) against a backtest of the same period on the same
stored bars (the engine, the same strategy and fill model): the share of fills that match in time, side, quantity
and price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backtests.classification import Classification
from backtests.data import load_bars
from backtests.engine import ts_to_datetimes
from backtests.models import AutonomyScore, BacktestRun, MatrixResult, RunStatus
from backtests.services import tenant_thresholds
from backtests.runs import run_engine
from bots import services as bot_services
from bots.models import Bot, Reconciliation, Stage
from bots.strategies import get_strategy, is_quote_strategy
from bots.timeframes import timeframe_delta
from controlplane.alerts import alert
from controlplane.books import Book, venue_in_book
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.risk import services as risk_services
from execution.fill_model import FillModel
from execution.models import Fill, Instrument, RiskIncident, TradingControl, TradingStateChoices
from execution.marketdata.selectors import market_data_problems
from oversight import scanner_evidence
from oversight.paper import paper_record

TIERS = ("T0", "T1", "T2", "T3")
LIVE_TIERS = ("T2", "T3")
AUTONOMY_INCIDENT = "autonomy_below_t2"
SUPERVISOR = "autonomy-supervisor"


@dataclass(frozen=True)
class Gate:
    tier: str
    gate: str
    passed: bool
    value: object
    required: str


def _backtest_quality(bot: Bot) -> dict:
    """The evidence the bot was promoted on (as the BACKTESTED gate: a PASS of its current parameters, else the
    latest); scheduled decay re-backtests are judged by the ``no_decay`` gate, not here. A scanner's is its quote
    replay, judged by the same rule as its BACKTESTED gate (oversight.scanner_evidence)."""
    if is_quote_strategy(get_strategy(bot.strategy)):
        judged = scanner_evidence.quote_replay_judgement(bot)
        return {
            "classification": Classification.PASS
            if judged.passed
            else (Classification.FAIL if judged.evidence is not None else None),
            "quote_replay": judged.evidence,
            "problems": judged.problems,
            "required": judged.required,
        }
    runs = BacktestRun.objects.filter(bot=bot, parameters_hash=bot.parameters_hash, status=RunStatus.FINISHED).exclude(
        purpose=BacktestRun.Purpose.DECAY
    )
    run = (
        runs.filter(classification=Classification.PASS).order_by("-finished_at").first()
        or runs.order_by("-finished_at").first()
    )
    if run is None:
        return {"classification": None, "sharpe": None, "backtest_run_id": None}
    return {"classification": run.classification, "sharpe": run.metrics.get("sharpe"), "backtest_run_id": run.id}


def _oos_robustness(bot: Bot) -> dict:
    result = MatrixResult.objects.filter(parameters_hash=bot.parameters_hash).order_by("-id").first()
    if result is None:
        return {"oos_is_sharpe_ratio": None, "matrix_id": None}
    ratio = next((r["value"] for r in result.classification_reasons if r["check"] == "oos_is_sharpe_ratio"), None)
    return {
        "oos_is_sharpe_ratio": ratio,
        "matrix_id": result.matrix_id,
        "out_of_sample_sharpe": result.out_of_sample.get("sharpe"),
    }


def paper_parity(bot: Bot, *, now: datetime) -> dict:
    """Paper fills vs a backtest of the same bars: matched fills / the larger of the two fill counts."""
    fills = list(
        Fill.objects.filter(venue_in_book(Book.PAPER), bot=bot, bot_stage=Stage.PAPER)
        .select_related("instrument")
        .order_by("ts", "id")
    )
    if not fills:
        return {"parity": None, "paper_fills": 0, "backtest_fills": None, "reason": "no paper fills"}
    strategy = get_strategy(bot.strategy)
    if is_quote_strategy(strategy):  # a scanner has no bars: its paper scans are held against its quote replay
        return {"paper_fills": len(fills), **scanner_evidence.scanner_paper_parity(bot)}
    step = timeframe_delta(bot.timeframe)
    first = fills[0].ts
    start = first - step * (strategy.warmup_bars(bot.parameters) + 1)
    paper = {
        (f.instrument.symbol, f.ts, 1 if f.side == "buy" else -1, float(f.quantity), float(f.price)) for f in fills
    }
    engine_fills = set()
    model = FillModel.from_config(settings.SIM_VENUE_FILL_MODELS.get("sim", {}))
    for symbol in bot.instruments:
        instrument = Instrument.objects.filter(symbol=symbol).first()
        if instrument is None:
            continue
        bars = load_bars(instrument=instrument, timeframe=bot.timeframe, start=start, end=now)
        if len(bars) < 2:
            continue
        result = run_engine(
            strategy_name=bot.strategy,
            params=bot.parameters,
            bars=bars,
            instrument=instrument,
            model=model,
            capital=100_000.0,
        )
        times = ts_to_datetimes(bars.ts)
        engine_fills |= {
            (symbol, times[f.filled_at], f.side, f.quantity, f.price)
            for f in result.fills
            if times[f.filled_at] >= first
        }
    matched = len(paper & engine_fills)
    denominator = max(len(paper), len(engine_fills))
    return {
        "parity": round(matched / denominator, 6) if denominator else None,
        "paper_fills": len(paper),
        "backtest_fills": len(engine_fills),
        "matched_fills": matched,
        "since": first.isoformat(),
    }


def _data_health(bot: Bot) -> dict:
    problems = market_data_problems(bot.tenant_id)
    mine = [p for p in problems if any(symbol in str(p.get("component", "")) for symbol in bot.instruments)]
    return {"ok": not mine, "problems": mine}


def _decay(bot: Bot) -> dict:
    run = (
        BacktestRun.objects.filter(
            bot=bot, purpose=BacktestRun.Purpose.DECAY, parameters_hash=bot.parameters_hash, status=RunStatus.FINISHED
        )
        .order_by("-finished_at")
        .first()
    )
    if run is None:
        return {"decayed": False, "backtest_run_id": None, "reason": "no decay check yet"}
    return {
        "decayed": run.classification != Classification.PASS,
        "classification": run.classification,
        "backtest_run_id": run.id,
    }


def evaluate_bot(bot: Bot, *, now: datetime) -> tuple[str, dict, list[Gate]]:
    """(tier, breakdown, gates) from the evidence stored now."""
    reconcile = Reconciliation.objects.filter(bot=bot).order_by("-id").first()
    paper = paper_record(bot=bot)
    record = {"trades": paper.trades, "days": paper.days}
    breakdown = {
        "backtest_quality": _backtest_quality(bot),
        "oos_robustness": _oos_robustness(bot),
        "paper_record": record,
        "paper_parity": paper_parity(bot, now=now),
        "data_health": _data_health(bot),
        "integration_health": {"blockers": scanner_evidence.live_integration_blockers(bot)},
        "risk_incidents": {"open": RiskIncident.objects.filter(bot=bot, status=RiskIncident.Status.OPEN).count()},
        "reconciliation": {"mismatch": bot.reconcile_mismatch, "latest": reconcile.status if reconcile else None},
        "decay": _decay(bot),
    }
    b = breakdown
    parity = b["paper_parity"]["parity"]
    min_trades, min_days = settings.BOT_LIVE_MIN_PAPER_TRADES, settings.BOT_LIVE_MIN_PAPER_DAYS
    t2_parity, t3_parity = settings.AUTONOMY_T2_MIN_PARITY, settings.AUTONOMY_T3_MIN_PARITY
    oos_min = tenant_thresholds().min_oos_is_sharpe_ratio
    ratio = b["oos_robustness"]["oos_is_sharpe_ratio"]
    # A scanner's backtest is its quote replay and its parity is paper scans against that replay: the same tiers,
    # named for what they measured. Its T3 robustness stays unmet: no parameter matrix runs over quotes yet.
    scanner = is_quote_strategy(get_strategy(bot.strategy))
    evidence_gate, parity_gate = (
        ("quote_replay_passed", "quote_replay_parity") if scanner else ("backtest_passed", "paper_parity")
    )
    gates = [
        Gate(
            "T1",
            evidence_gate,
            b["backtest_quality"]["classification"] == "PASS",
            b["backtest_quality"]["classification"],
            f"PASS ({b['backtest_quality']['required']})" if scanner else "PASS",
        ),
        Gate("T1", "no_reconcile_mismatch", not bot.reconcile_mismatch, bot.reconcile_mismatch, "false"),
        Gate("T2", "paper_trades", record["trades"] >= min_trades, record["trades"], f">= {min_trades}"),
        Gate("T2", "paper_days", record["days"] >= min_days, record["days"], f">= {min_days}"),
        Gate("T2", parity_gate, parity is not None and parity >= t2_parity, parity, f">= {t2_parity}"),
        Gate("T2", "no_open_risk_incidents", b["risk_incidents"]["open"] == 0, b["risk_incidents"]["open"], "0"),
        Gate(
            "T2",
            "data_healthy",
            b["data_health"]["ok"] is True,
            len(b["data_health"]["problems"]),
            "0 market-data problems on its instruments",
        ),
        Gate(
            "T2",
            "live_integrations_ready",
            not b["integration_health"]["blockers"],
            [x["provider"] for x in b["integration_health"]["blockers"]],
            "no blockers",
        ),
        Gate(
            "T2",
            "no_decay",
            not b["decay"]["decayed"],
            b["decay"].get("classification"),
            "latest decay re-backtest PASS (or none yet)",
        ),
        Gate(
            "T3",
            "oos_robustness",
            ratio is not None and ratio >= oos_min,
            ratio,
            f">= {oos_min}" + (" (no parameter matrix runs over quotes yet: a scanner stays at T2)" if scanner else ""),
        ),
        Gate("T3", f"{parity_gate}_high", parity is not None and parity >= t3_parity, parity, f">= {t3_parity}"),
        Gate("T3", "paper_trades_double", record["trades"] >= 2 * min_trades, record["trades"], f">= {2 * min_trades}"),
        Gate(
            "T3",
            "reconcile_matched",
            b["reconciliation"]["latest"] == "MATCHED",
            b["reconciliation"]["latest"],
            "MATCHED",
        ),
    ]
    tier = "T0"
    for candidate in TIERS[1:]:
        if all(g.passed for g in gates if TIERS.index(g.tier) <= TIERS.index(candidate)):
            tier = candidate
        else:
            break
    return tier, breakdown, gates


def autonomy_compute(*, bot_id: int, trigger: str, actor=None) -> AutonomyScore:
    """Score the bot now, store the score with its breakdown and gates, and set the bot's tier (audited)."""
    now = timezone.now()
    with transaction.atomic():
        bot = Bot.objects.filter(pk=bot_id).first()
        if bot is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
        tier, breakdown, gates = evaluate_bot(bot, now=now)
        score = AutonomyScore.objects.create(
            bot=bot,
            tier=tier,
            score=round(sum(g.passed for g in gates) / len(gates), 4),
            breakdown=breakdown,
            gates=[asdict(g) for g in gates],
            trigger=trigger,
            trace_id=current_trace_id(),
        )
        bot_services.bot_set_autonomy_tier(
            bot_id=bot.id,
            tier=tier,
            actor=actor,
            actor_name=None if actor else SUPERVISOR,
            evidence={"autonomy_score_id": score.id},
        )
        if bot.stage == Stage.LIVE and tier not in LIVE_TIERS:
            _live_bot_below_t2(bot=bot, score=score)
    return score


def _live_bot_below_t2(*, bot: Bot, score: AutonomyScore) -> RiskIncident | None:
    """A LIVE bot whose score no longer allows live trading keeps only what reduces its exposure: REDUCE_ONLY now
    (a HALTED bot stays HALTED), one incident per fall and an alert. Going back to ACTIVE is the operator's call
    once the tier is back, so a flapping score cannot reopen trading on its own."""
    control = TradingControl.objects.filter(bot_id=bot.id).first()
    if control is not None and control.state != TradingStateChoices.ACTIVE:
        return None  # already reduce-only or halted: that fall was reported
    failed = [g["gate"] for g in score.gates if not g["passed"]]
    reason = f"autonomy tier {score.tier} is below T2 (score {score.id}; failed gates: {', '.join(failed)})"
    risk_services.trading_state_set(
        bot_id=bot.id, state=TradingStateChoices.REDUCE_ONLY, reason=reason, actor_name=SUPERVISOR
    )
    details = {
        "autonomy_tier": score.tier,
        "autonomy_score_id": score.id,
        "failed_gates": failed,
        "trading_state": TradingStateChoices.REDUCE_ONLY,
    }
    incident = RiskIncident.objects.create(
        bot=bot, kind=AUTONOMY_INCIDENT, details=details, trace_id=current_trace_id()
    )
    audit_record(
        action="risk_incident.open",
        resource_type="risk_incident",
        resource_id=incident.pk,
        actor_name=SUPERVISOR,
        after={"kind": AUTONOMY_INCIDENT, "bot_id": bot.id, **details},
    )
    transaction.on_commit(
        lambda: alert(
            event="autonomy.below_t2",
            message=f"live bot {bot.name} fell to autonomy tier {score.tier}: reduce only",
            tenant_id=bot.tenant_id,
            bot_id=bot.id,
            incident_id=incident.pk,
            **details,
        )
    )
    return incident


def autonomy_sweep() -> dict:
    """Score every PAPER and LIVE bot of the tenant in context (beat, per tenant)."""
    with transaction.atomic():
        bot_ids = list(Bot.objects.filter(stage__in=[Stage.PAPER, Stage.LIVE]).values_list("id", flat=True))
    tiers = {}
    for bot_id in bot_ids:
        tiers[bot_id] = autonomy_compute(bot_id=bot_id, trigger=AutonomyScore.Trigger.SCHEDULE).tier
    return tiers


def tier_counts(tenant_id: int) -> dict[str, int]:
    """Bots (not retired) per tier, for the system status."""
    from django.db.models import Count

    from controlplane.tenancy import tenant_context

    counts = {tier: 0 for tier in TIERS}
    with tenant_context(tenant_id), transaction.atomic():
        for row in Bot.objects.exclude(stage=Stage.RETIRED).values("autonomy_tier").annotate(n=Count("id")):
            counts[row["autonomy_tier"]] = row["n"]
    return counts
