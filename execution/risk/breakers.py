"""Circuit breakers: kill a bot that keeps failing or loses more than it may, record why, and alert.

Two triggers share one way out (:func:`trip_circuit_breaker`): the tick's consecutive-error count
(``TICK_MAX_CONSECUTIVE_ERRORS``, checked in execution.tick.batches) and the drawdown limit checked here every minute by
beat. A trip kills the bot through the bots kill service (actor ``circuit_breaker``; the kill cancels its open
orders through the OMS), opens a ``RiskIncident`` of kind ``circuit_breaker`` and alerts through
``controlplane.alerts`` once committed.

Drawdown: a bot's equity is its realized PnL (after fees) plus its open positions marked at their instrument's
latest complete bar (``execution.risk.positions.bot_equity``); its high-water mark is kept in ``EquityWatermark``.
When the peak minus the equity exceeds the bot's ``risk_limits.max_drawdown`` (an amount in the account currency),
the breaker trips. An open position without any bar has no mark: the bot is skipped and a warning says so, never
marked at a made-up price. A mark older than its timeframe's freshness limit (the tick's rule,
``execution.marketdata.selectors.bar_staleness``) is no better: the bot is skipped as ``stale_mark``, its watermark left as it
was, and the sweep reports it as a market-data problem (a ``DATA_STALE`` warning naming the instruments and bars),
so a stale price neither kills the bot nor vouches for it.

Books: the breaker measures the book the bot trades in now (``bots.routing.order_book``: live once LIVE, paper
before), each with its own high-water mark. A promoted bot's live peak starts at its first live mark; its paper
positions left on the sim venue can neither kill it nor hide a live loss.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from bots.models import Bot, Stage
from bots.risk_limits import InvalidRiskLimits
from bots.routing import order_book
from bots.services import bot_kill
from controlplane import tenancy
from controlplane.alerts import alert
from controlplane.selectors import all_tenant_ids
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import EquityWatermark, RiskIncident
from execution.risk.positions import bot_equity
from execution.risk.state import autonomy_limit_factor, limits_from_json

logger = logging.getLogger(__name__)

CIRCUIT_BREAKER = "circuit_breaker"


def trip_circuit_breaker(*, bot_id: int, trigger: str, reason: str, values: dict) -> RiskIncident | None:
    """Kill the bot, open a circuit-breaker incident and alert. A bot already killed is left as it is (None)."""
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
        if bot is None or bot.killed:
            return None
        bot_kill(bot_id=bot_id, actor=None, actor_name=CIRCUIT_BREAKER, reason=reason)
        details = {"trigger": trigger, "reason": reason, **values}
        incident = RiskIncident.objects.create(
            bot_id=bot_id, kind=CIRCUIT_BREAKER, details=details, trace_id=current_trace_id()
        )
        audit_record(
            action="risk_incident.open",
            resource_type="risk_incident",
            resource_id=incident.pk,
            actor_name=CIRCUIT_BREAKER,
            after={"kind": CIRCUIT_BREAKER, "bot_id": bot_id, **details},
        )
        transaction.on_commit(
            lambda: alert(
                event="circuit_breaker.tripped",
                message=f"circuit breaker killed bot {bot.name}: {reason}",
                tenant_id=bot.tenant_id,
                bot_id=bot_id,
                incident_id=incident.pk,
                trigger=trigger,
                values=values,
            )
        )
    return incident


def max_drawdown_limit(bot: Bot) -> Decimal | None:
    """The bot's ``max_drawdown``, scaled like its order limits for a LIVE bot at autonomy tier T2 (the supervisor's
    drawdown trigger reads it too: one limit, one measurement)."""
    limit, factor = limits_from_json(bot.risk_limits).max_drawdown, autonomy_limit_factor(bot)
    return limit if limit is None or factor is None else limit * factor


def check_drawdown(*, bot_id: int, now: datetime, marks_cache: dict | None = None) -> str:
    """Mark one bot, move its high-water mark, and trip the breaker past its ``max_drawdown``.

    Returns what happened: ``tripped``, ``within_limit``, ``no_mark``, ``stale_mark``, ``invalid_limit`` or
    ``not_checked`` (no limit, killed, retired or gone). Safe to run twice: the same marks move nothing, and a
    killed bot is skipped.
    """
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
        if bot is None or bot.killed or bot.stage == Stage.RETIRED:
            return "not_checked"
        try:
            limit = max_drawdown_limit(bot)
        except InvalidRiskLimits as exc:
            # The risk engine already halts a scope whose limits cannot be read; the breaker cannot measure.
            logger.error(
                "drawdown breaker: unreadable risk limits, bot not checked",
                extra={"bot_id": bot.id, "tenant_id": bot.tenant_id, "error": str(exc)},
            )
            return "invalid_limit"
        if limit is None:
            return "not_checked"
        book = order_book(bot)
        equity = bot_equity(bot_id=bot.id, book=book, as_of=now, marks_cache=marks_cache)
        if equity.total is None:
            logger.warning(
                "drawdown breaker: no bar to mark an open position, drawdown not measured",
                extra={
                    "bot_id": bot.id,
                    "tenant_id": bot.tenant_id,
                    "book": book,
                    "unmarked": list(equity.unmarked),
                    "as_of": now.isoformat(),
                    "max_drawdown": str(limit),
                },
            )
            return "no_mark"
        if equity.stale:
            logger.warning(
                "drawdown breaker: a mark is stale (DATA_STALE), drawdown not measured",
                extra={
                    "bot_id": bot.id,
                    "tenant_id": bot.tenant_id,
                    "book": book,
                    "error_code": "DATA_STALE",
                    "stale": list(equity.stale),
                    "marks": {s: equity.marks[s] for s in equity.stale},
                    "as_of": now.isoformat(),
                    "max_drawdown": str(limit),
                },
            )
            return "stale_mark"
        watermark = EquityWatermark.objects.select_for_update().filter(bot=bot, book=book).first()
        if watermark is None:
            watermark = EquityWatermark(bot=bot, book=book, peak_equity=equity.total, peak_at=now)
        elif watermark.tripped_at is not None:  # unkilled since the trip: a new peak from here
            watermark.peak_equity, watermark.peak_at, watermark.tripped_at = equity.total, now, None
        elif equity.total > watermark.peak_equity:
            watermark.peak_equity, watermark.peak_at = equity.total, now
        watermark.equity, watermark.marked_at, watermark.marks = equity.total, now, equity.marks
        drawdown = watermark.peak_equity - equity.total
        breached = drawdown > limit
        if breached:
            watermark.tripped_at = now
        watermark.save()
        if not breached:
            return "within_limit"
        values = {
            "book": book,
            "equity": str(equity.total),
            "peak_equity": str(watermark.peak_equity),
            "peak_at": watermark.peak_at.isoformat(),
            "drawdown": str(drawdown),
            "max_drawdown": str(limit),
            "realized_pnl": str(equity.realized),
            "unrealized_pnl": str(equity.unrealized),
            "marks": equity.marks,
        }
        trip_circuit_breaker(
            bot_id=bot.id,
            trigger="max_drawdown",
            values=values,
            reason=(
                f"circuit breaker: {book} drawdown {drawdown} exceeds max_drawdown {limit} "
                f"(equity {equity.total}, peak {watermark.peak_equity})"
            ),
        )
    return "tripped"


def drawdown_sweep_tenant(*, now: datetime | None = None) -> dict[str, int]:
    """Check every unkilled bot of the tenant in context that has a ``max_drawdown``, one transaction each."""
    now = now or timezone.now()
    with transaction.atomic():
        bot_ids = list(
            Bot.objects.filter(killed=False, risk_limits__has_key="max_drawdown")
            .exclude(stage=Stage.RETIRED)
            .order_by("id")
            .values_list("id", flat=True)
        )
    counts: Counter = Counter()
    marks_cache: dict = {}  # every bot is marked as of the same ``now``: each instrument's mark is read once
    for bot_id in bot_ids:
        try:
            counts[check_drawdown(bot_id=bot_id, now=now, marks_cache=marks_cache)] += 1
        except Exception:  # one bot's failure must not leave the others unguarded
            logger.exception("drawdown breaker failed for bot", extra={"bot_id": bot_id})
            counts["error"] += 1
    return dict(counts)


def drawdown_sweep(*, now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The drawdown breaker over every tenant, one tenant context at a time. Suspended tenants too: the breaker
    kills, and a suspended tenant's positions still move."""
    now = now or timezone.now()
    results = {}
    for tenant_id in all_tenant_ids():
        with tenancy.tenant_context(tenant_id):
            counts = drawdown_sweep_tenant(now=now)
        if counts:
            results[tenant_id] = counts
    return results
