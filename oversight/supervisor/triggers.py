"""The supervisor's triggers: each measures one thing about a bot (or the tenant) and compares it with its threshold.

A measurement is breached, not breached, or unknown (``breached`` None, with the reason): a value that cannot be
measured is never taken as fine. An unknown breaches when the bot is LIVE and the trigger is in
``FAIL_CLOSED_WHEN_LIVE`` (real money at stake and the guard blind); otherwise it is recorded in the run's
``unknown`` list and acts on nothing. A trigger that does not apply (no limit configured, no runner, not LIVE)
returns None.

Each trigger reads the measurement where it already lives: the drawdown breaker's high-water mark
(``EquityWatermark``), the OMS's day results (``ProfitVariables``), the runner's error count and heartbeat, the
orders' statuses, the tick's freshness rule (``bar_staleness``), the latest reconciliation, the autonomy score's
parity and tier, the tenant's system status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q

from backtests.models import AutonomyScore
from bots.models import Bot, Reconciliation, Runner, Stage
from bots.risk_limits import InvalidRiskLimits
from bots.strategies import get_strategy, is_quote_strategy
from bots.routing import order_book
from controlplane.books import Book, venue_in_book
from controlplane.status import OK, cached_system_status
from execution.marketdata.quote_selectors import usable_quotes
from execution.marketdata.selectors import DataProblem, instrument_by_symbol, latest_bar
from execution.models import EquityWatermark, Fill, Order
from execution.risk.breakers import max_drawdown_limit
from execution.risk.state import autonomy_limit_factor, limits_from_json
from oversight.autonomy import LIVE_TIERS
from oversight.models import SupervisorBreach
from traces.models import ProfitVariables

Step = SupervisorBreach.Step


@dataclass
class Measurement:
    breached: bool | None  # None: could not be measured (``reason`` says why)
    value: object = None
    threshold: object = None
    worse: bool = False
    values: dict = field(default_factory=dict)
    reason: str = ""
    unknown: bool = False  # set by the sweep when it decides what an unknown measurement means
    first_step: int | None = None  # where this measurement's episode starts, when not the trigger's own


@dataclass(frozen=True)
class Trigger:
    name: str
    first_step: int
    measure: Callable
    scope: str = "bot"  # or "tenant"
    grace_key: str | None = None  # a threshold that holds the first action back this many seconds


def _worse(value, threshold, factor: float) -> bool:
    return value is not None and threshold and float(value) >= factor * float(threshold)


def _factor() -> float:
    return settings.SUPERVISOR_WORSE_FACTOR


def _latest_runner(bot: Bot) -> Runner | None:
    return Runner.objects.filter(bot=bot, mode=Runner.Mode.LIVE).order_by("-started_at", "-id").first()


def drawdown(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """Peak minus equity of the bot's current book, as the drawdown breaker last marked it, against a share of
    its ``max_drawdown``: the supervisor acts before the breaker kills."""
    try:
        limit = max_drawdown_limit(bot)
    except InvalidRiskLimits as exc:
        return Measurement(None, reason=f"risk limits unreadable: {exc}")
    if limit is None:
        return None
    threshold = limit * Decimal(str(t["drawdown_fraction"]))
    book = order_book(bot)
    mark = EquityWatermark.objects.filter(bot=bot, book=book).first()
    if mark is None:
        return Measurement(None, threshold=str(threshold), reason=f"no high-water mark of the {book} book yet")
    max_age = timedelta(seconds=3 * settings.DRAWDOWN_BREAKER_INTERVAL_SECONDS)
    values = {
        "book": book,
        "equity": str(mark.equity),
        "peak_equity": str(mark.peak_equity),
        "marked_at": mark.marked_at.isoformat(),
        "max_drawdown": str(limit),
    }
    if mark.marked_at < now - max_age:
        return Measurement(
            None,
            threshold=str(threshold),
            values=values,
            reason=f"the {book} book was last marked at {mark.marked_at.isoformat()} (stale or unmarkable prices)",
        )
    dd = mark.peak_equity - mark.equity
    return Measurement(dd > threshold, str(dd), str(threshold), _worse(dd, threshold, _factor()), values)


def daily_loss(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """Today's (UTC) realized loss after fees in the bot's book (the OMS's ``ProfitVariables``; no row is no fill
    today, a measured zero) against a share of its ``max_daily_loss``."""
    try:
        limit = limits_from_json(bot.risk_limits).max_daily_loss
    except InvalidRiskLimits as exc:
        return Measurement(None, reason=f"risk limits unreadable: {exc}")
    if limit is None:
        return None
    factor = autonomy_limit_factor(bot)
    limit = limit * factor if factor is not None else limit
    threshold = limit * Decimal(str(t["daily_loss_fraction"]))
    book = order_book(bot)
    row = ProfitVariables.objects.filter(bot_id=bot.id, book=book, day=now.date()).first()
    loss = -(row.pnl if row else Decimal(0))
    values = {"book": book, "day": now.date().isoformat(), "max_daily_loss": str(limit), "fills_today": row is not None}
    return Measurement(
        loss > 0 and loss >= threshold, str(loss), str(threshold), _worse(loss, threshold, _factor()), values
    )


def tick_errors(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """The running runner's consecutive tick errors, before the tick's own breaker kills at
    ``TICK_MAX_CONSECUTIVE_ERRORS``."""
    runner = _latest_runner(bot)
    if runner is None or runner.status != Runner.Status.RUNNING:
        return None
    n, threshold = runner.consecutive_errors, t["tick_errors"]
    return Measurement(n >= threshold, n, threshold, _worse(n, threshold, _factor()), {"runner_id": runner.id})


def _order_rates(bot: Bot, t: dict, now: datetime) -> dict:
    since = now - timedelta(seconds=t["rate_window_seconds"])
    return Order.objects.filter(bot=bot, bot_stage=bot.stage, created_at__gt=since, created_at__lte=now).aggregate(
        total=Count("id"),
        rejected=Count("id", filter=Q(status=Order.Status.REJECTED)),
        failed=Count("id", filter=Q(status=Order.Status.FAILED)),
    )


def _rate(bot: Bot, t: dict, now: datetime, *, key: str, threshold_key: str) -> Measurement:
    counts = _order_rates(bot, t, now)
    threshold = t[threshold_key]
    values = {**counts, "window_seconds": t["rate_window_seconds"], "min_orders": t["rate_min_orders"]}
    if counts["total"] < t["rate_min_orders"]:
        # Measured: too few orders for a rate to mean anything (one reject of one order is not a 100% rate).
        return Measurement(False, None, threshold, values=values, reason="too few orders in the window")
    rate = round(counts[key] / counts["total"], 4)
    return Measurement(rate >= threshold, rate, threshold, _worse(rate, threshold, _factor()), values)


def reject_rate(bot: Bot, t: dict, now: datetime) -> Measurement:
    return _rate(bot, t, now, key="rejected", threshold_key="reject_rate")


def venue_error_rate(bot: Bot, t: dict, now: datetime) -> Measurement:
    return _rate(bot, t, now, key="failed", threshold_key="venue_error_rate")


def data_stale(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """Bars of open market missed since the latest bar closed, on the worst of the running bot's instruments (the
    tick's freshness rule, ``bar_staleness``). No bar at all is a breach, not a zero."""
    runner = _latest_runner(bot)
    if runner is None or runner.status != Runner.Status.RUNNING:
        return None
    if is_quote_strategy_name(bot.strategy):
        return _quotes_stale(bot, t, now)
    threshold, worst, per = t["stale_bars"], 0.0, {}
    missing = []
    for symbol in bot.instruments:
        instrument = instrument_by_symbol(symbol)
        if instrument is None:
            missing.append(symbol)
            continue
        check = latest_bar(instrument=instrument, timeframe=bot.timeframe, as_of=now)
        if check.problem == DataProblem.DATA_UNAVAILABLE:
            missing.append(symbol)
            continue
        bars = check.details["open_seconds_since_bar_close"] / check.details["allowed_seconds"]
        per[symbol] = {"bar_ts": check.bar_ts.isoformat(), "bars_missed": round(bars, 2)}
        worst = max(worst, bars)
    values = {"instruments": per, "no_bars": missing, "timeframe": bot.timeframe}
    if missing:
        return Measurement(True, None, threshold, False, values, reason=f"no bar at all for {', '.join(missing)}")
    worst = round(worst, 2)
    return Measurement(worst > threshold, worst, threshold, _worse(worst, threshold, _factor()), values)


def is_quote_strategy_name(name: str) -> bool:
    try:
        return is_quote_strategy(get_strategy(name))
    except KeyError:
        return False


def _quotes_stale(bot: Bot, t: dict, now: datetime) -> Measurement:
    """A scanner reads quotes, not bars: its staleness is its instruments' freshest usable quote age, in units of
    ``ARB_QUOTE_MAX_AGE_MS`` (the same ``stale_bars`` threshold, one unit being the age past which a scan may not
    use a quote). An instrument with no usable quote at any venue is a breach, not a zero."""
    threshold, worst, per, missing = t["stale_bars"], 0.0, {}, []
    view = usable_quotes(symbols=list(bot.instruments), as_of=now)
    fresh: dict[str, int] = {}
    for quote in view.usable:
        fresh[quote.symbol] = min(fresh.get(quote.symbol, quote.age_ms), quote.age_ms)
    ages: dict[str, int | None] = dict(fresh)
    for gone in view.unusable:
        if gone.symbol not in fresh:
            known = ages.get(gone.symbol)
            ages[gone.symbol] = gone.age_ms if known is None else min(known, gone.age_ms or known)
    for symbol in bot.instruments:
        if symbol not in fresh:
            missing.append(symbol)
        age = ages.get(symbol)
        per[symbol] = {"freshest_quote_age_ms": age, "usable_venues": sum(1 for q in view.usable if q.symbol == symbol)}
        if age is not None:
            worst = max(worst, age / view.max_age_ms)
    values = {"instruments": per, "no_usable_quote": missing, "max_age_ms": view.max_age_ms}
    if missing:
        return Measurement(True, None, threshold, False, values, reason=f"no usable quote for {', '.join(missing)}")
    worst = round(worst, 2)
    return Measurement(worst > threshold, worst, threshold, _worse(worst, threshold, _factor()), values)


def reconcile_mismatch(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """The bot's latest reconciliation is a MISMATCH nobody resolved."""
    latest = Reconciliation.objects.filter(bot=bot).order_by("-created_at", "-id").first()
    if latest is None:
        if bot.stage == Stage.LIVE:
            return Measurement(None, threshold="MATCHED", reason="no reconciliation of this LIVE bot")
        return None
    breached = latest.status == Reconciliation.Status.MISMATCH and not latest.resolution
    values = {"reconciliation_id": latest.id, "book": latest.book, "differences": latest.differences}
    return Measurement(breached, latest.status, "MATCHED", values=values)


def runner_heartbeat(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """Seconds since the bot's runner last reported; a runner the watchdog marked STALE or FAILED has lost it. A
    runner the operator stopped is not watched."""
    runner = _latest_runner(bot)
    if runner is None or runner.status not in (Runner.Status.RUNNING, Runner.Status.STALE, Runner.Status.FAILED):
        return None
    last = runner.last_heartbeat_at or runner.started_at
    age = round((now - last).total_seconds(), 1)
    threshold = t["heartbeat_seconds"]
    values = {"runner_id": runner.id, "runner_status": runner.status, "last_heartbeat_at": last.isoformat()}
    lost = runner.status != Runner.Status.RUNNING or age > threshold
    return Measurement(lost, age, threshold, _worse(age, threshold, _factor()), values)


def parity(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """Paper-vs-backtest fill parity of a LIVE bot (its latest autonomy score), once both its books hold fills."""
    if bot.stage != Stage.LIVE:
        return None
    books = {book for book in Book if Fill.objects.filter(venue_in_book(book), bot=bot).exists()}
    if books != {Book.PAPER, Book.LIVE}:
        return None
    score = AutonomyScore.objects.filter(bot=bot).order_by("-computed_at", "-id").first()
    threshold = t["min_parity"]
    value = ((score.breakdown or {}).get("paper_parity") or {}).get("parity") if score else None
    if value is None:
        return Measurement(None, threshold=threshold, reason="no autonomy score with a parity for this bot")
    values = {"autonomy_score_id": score.id, "computed_at": score.computed_at.isoformat()}
    worse = threshold > 0 and value <= threshold / _factor()
    return Measurement(value < threshold, value, threshold, worse, values)


def autonomy_tier(bot: Bot, t: dict, now: datetime) -> Measurement | None:
    """A LIVE bot's autonomy tier below the stage's minimum (T2)."""
    if bot.stage != Stage.LIVE:
        return None
    return Measurement(bot.autonomy_tier not in LIVE_TIERS, bot.autonomy_tier, LIVE_TIERS[0])


def system_status(tenant_id: int, t: dict, now: datetime) -> Measurement:
    """The tenant's system status (cached per process): not OK for longer than the grace period. With a LIVE bot
    the tenant goes REDUCE_ONLY; a tenant that only paper-trades is warned (no real money rides on it, and the
    tick already refuses what it cannot run)."""
    status = cached_system_status()
    live = Bot.objects.filter(stage=Stage.LIVE, killed=False).count()
    values = {
        "status_trace_id": status.get("trace_id"),
        "issues": [b.get("component") for b in status.get("blockers") or []],
        "live_bots": live,
    }
    first = None if live else Step.WARN
    return Measurement(status["status"] != OK, status["status"], OK, values=values, first_step=first)


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("drawdown", Step.REDUCE_ONLY, drawdown),
    Trigger("daily_loss", Step.REDUCE_ONLY, daily_loss),
    Trigger("tick_errors", Step.HALTED, tick_errors),
    Trigger("reject_rate", Step.REDUCE_ONLY, reject_rate),
    Trigger("venue_error_rate", Step.HALTED, venue_error_rate),
    Trigger("data_stale", Step.WARN, data_stale),
    Trigger("reconcile_mismatch", Step.HALTED, reconcile_mismatch),
    Trigger("runner_heartbeat", Step.HALTED, runner_heartbeat),
    Trigger("parity", Step.REDUCE_ONLY, parity),
    Trigger("autonomy_tier", Step.REDUCE_ONLY, autonomy_tier),
    Trigger("system_status", Step.REDUCE_ONLY, system_status, scope="tenant", grace_key="status_grace_seconds"),
)
BY_NAME = {trigger.name: trigger for trigger in TRIGGERS}

# Blind on real money is not fine: for a LIVE bot these unknowns act as a breach at the trigger's first step.
FAIL_CLOSED_WHEN_LIVE = frozenset({"drawdown", "daily_loss", "reconcile_mismatch", "parity"})
