"""Promotion gates: what must hold before a bot moves up a stage. Each failing gate says how to fix it.

They judge facts from every layer below (backtests, the paper record, reconciles, kills, integrations), so they
live on top and read those facts directly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backtests.classification import Classification
from backtests.models import BacktestRun, RunStatus
from bots.models import Bot, Reconciliation, Stage
from bots.routing import integration_blockers
from bots.selectors import kill_block, unresolved_live_exit
from bots.strategies import get_strategy, is_quote_strategy
from controlplane.books import Book, book_for_venue
from controlplane.errors import ErrorCode
from controlplane.models import Membership
from oversight import scanner_evidence
from oversight.paper import paper_record


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    message: str
    suggested_fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _backtest_gate(bot: Bot) -> GateResult:
    """A bar bot's backtest of its current parameters; a scanner's quote replay (oversight.scanner_evidence)."""
    if is_quote_strategy(get_strategy(bot.strategy)):
        judged = scanner_evidence.quote_replay_judgement(bot)
        return GateResult(scanner_evidence.GATE_NAME, judged.passed, judged.message, judged.suggested_fix)
    passing = (
        BacktestRun.objects.filter(
            bot=bot, parameters_hash=bot.parameters_hash, status=RunStatus.FINISHED, classification=Classification.PASS
        )
        .order_by("-finished_at")
        .first()
    )
    if passing:
        return GateResult("backtest_passed", True, f"Backtest {passing.id} of these parameters passed.")
    return GateResult(
        "backtest_passed",
        False,
        "No finished backtest of the bot's current parameters is classified PASS.",
        "Run a backtest of the bot's current configuration (POST /api/backtests with bot_id) until it passes.",
    )


def _integrations_gate(bot: Bot, stage: str) -> GateResult:
    live = stage == Stage.LIVE
    blockers = scanner_evidence.live_integration_blockers(bot) if live else integration_blockers(bot, stage=stage)
    name = "venue_verified" if stage == Stage.LIVE else "data_source_verified"
    if not blockers:
        return GateResult(name, True, "The integrations this stage needs are verified.")
    return GateResult(
        name, False, "; ".join(f"{b['provider']}: {b['message']}" for b in blockers), blockers[0]["suggested_fix"]
    )


def _paper_record_gate(bot: Bot) -> GateResult:
    record = paper_record(bot=bot)
    min_trades, min_days = settings.BOT_LIVE_MIN_PAPER_TRADES, settings.BOT_LIVE_MIN_PAPER_DAYS
    problems = []
    if record.trades < min_trades:
        problems.append(f"{record.trades} paper trades (need {min_trades})")
    if record.days < min_days:
        problems.append(f"{record.days} paper days (need {min_days})")
    if record.open_risk_incidents:
        problems.append(f"{record.open_risk_incidents} open risk incidents (need 0)")
    if problems:
        return GateResult(
            "paper_record",
            False,
            "Paper record too short: " + ", ".join(problems) + ".",
            "Keep the bot in PAPER until it has the trades and days, and resolve its risk incidents.",
        )
    return GateResult("paper_record", True, f"{record.trades} trades over {record.days} days, no open incidents.")


def _live_reconcile_gate(bot: Bot) -> GateResult:
    """Going LIVE starts from the venue's own answer: the bot's latest reconcile compared its live book with the
    venue account, MATCHED, and is at most ``BOT_LIVE_RECONCILE_MAX_AGE_SECONDS`` old now. A window rather than
    "since the bot last left LIVE": the account changes whenever anyone trades it (another bot, a person at the
    broker), so only a recent answer says what the first live order will meet; the latest report must be the
    match, so a later mismatch always wins."""
    name = "live_reconcile"
    if book_for_venue(bot.venue) == Book.PAPER:
        return GateResult(name, True, f"Venue {bot.venue} is a sim venue: there is no live account to reconcile.")
    max_age = timedelta(seconds=settings.BOT_LIVE_RECONCILE_MAX_AGE_SECONDS)
    fix = (
        f"Run POST /api/bots/{bot.id}/reconcile (it compares the live book with {bot.venue}'s account); resolve "
        f"a mismatch with POST /api/bots/{bot.id}/reconcile/resolve; then promote within "
        f"{int(max_age.total_seconds() // 60)} minutes of the match."
    )
    latest = Reconciliation.objects.filter(bot=bot).order_by("-id").first()
    if latest is None or latest.venue != bot.venue or latest.book != Book.LIVE:
        return GateResult(name, False, f"No reconcile of the live book with {bot.venue} yet.", fix)
    if latest.status != Reconciliation.Status.MATCHED:
        return GateResult(
            name,
            False,
            f"The latest reconcile ({latest.id}) of the live book with {bot.venue} is {latest.status}.",
            fix,
        )
    age = timezone.now() - latest.created_at
    if age > max_age:
        return GateResult(
            name,
            False,
            f"The latest matched reconcile ({latest.id}) is {int(age.total_seconds())} s "
            f"old; going LIVE needs one from the last {int(max_age.total_seconds())} s.",
            fix,
        )
    return GateResult(
        name, True, f"Reconcile {latest.id} of the live book with {bot.venue} matched {int(age.total_seconds())} s ago."
    )


def _owner_approval_gate(actor) -> GateResult:
    is_owner = bool(actor is not None and getattr(actor, "is_superuser", False)) or (
        actor is not None and Membership.objects.filter(user_id=actor.pk, role=Membership.Role.OWNER).exists()
    )
    if is_owner:
        return GateResult("owner_approval", True, "Promoted by an owner of the tenant.")
    return GateResult(
        "owner_approval",
        False,
        "Going LIVE needs an owner's approval.",
        "Ask an owner of the tenant to promote the bot to LIVE.",
    )


def _not_killed_gate(bot: Bot) -> GateResult:
    block = kill_block(bot)
    if block is None:
        return GateResult("not_killed", True, "Neither the bot, the tenant nor the platform is killed.")
    return GateResult("not_killed", False, block.message, block.suggested_fix)


def _autonomy_gate(bot: Bot) -> GateResult:
    if bot.autonomy_tier in (Bot.AutonomyTier.T2, Bot.AutonomyTier.T3):
        return GateResult("autonomy_tier", True, f"Autonomy tier {bot.autonomy_tier} allows live trading.")
    return GateResult(
        "autonomy_tier",
        False,
        f"Autonomy tier {bot.autonomy_tier}; going LIVE needs T2 or better.",
        "Score the bot (POST /api/bots/{id}/autonomy) and meet the T2 gates it lists.",
    )


def _live_exit_gate(bot: Bot) -> GateResult:
    found = unresolved_live_exit(bot)
    if found is None:
        return GateResult(
            "live_exit_resolved", True, "The bot's last exit from LIVE left nothing at its venue, or it was resolved."
        )
    what, record = found
    if what == "pending":
        return GateResult(
            "live_exit_resolved",
            False,
            f"The bot's exit from LIVE (cancel request {record.id}) is not accounted for yet: its "
            "orders may still be working and what its venue holds is unknown.",
            "Wait for the OMS to process the cancel request (the beat sweeps pending ones), then "
            "resolve what it reports.",
        )
    held = ", ".join(f"{s} {d['venue']:g}" for s, d in sorted(record.differences.items())) or "unknown holdings"
    return GateResult(
        "live_exit_resolved",
        False,
        f"The bot left LIVE while {record.venue} still held {held} (report {record.id}, "
        f"{ErrorCode.UNMANAGED_LIVE_POSITION}).",
        ErrorCode.UNMANAGED_LIVE_POSITION.suggested_fix,
    )


def promotion_gates(bot: Bot, to_stage: str, *, actor) -> list[GateResult]:
    """Every gate of ``to_stage``, passed or not, in a fixed order."""
    if to_stage == Stage.BACKTESTED:
        return [_backtest_gate(bot)]
    if to_stage == Stage.PAPER:
        return [_integrations_gate(bot, Stage.PAPER)]
    if to_stage == Stage.LIVE:
        return [
            _paper_record_gate(bot),
            _integrations_gate(bot, Stage.LIVE),
            _live_reconcile_gate(bot),
            _owner_approval_gate(actor),
            _not_killed_gate(bot),
            _autonomy_gate(bot),
            _live_exit_gate(bot),
        ]
    return []
