"""The bot page: one page answering "what is this bot doing and why" from the reads the API already uses (the
why-not verdict and window, the decision traces, the latest autonomy score, PnL per book, the audit trail).

Each panel is read on its own: a panel whose read fails says so and what it cannot know, and the others still
render. While the system is not OK every panel says its numbers may be incomplete; nothing unknown is shown as a
zero ("no trade" or "$0" only ever comes from a read that succeeded).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode

from backtests.models import AutonomyScore
from bots.models import Bot, Runner
from bots.strategies import get_strategy
from controlplane.models import AuditEvent
from controlplane.status import OK
from controlplane.tenancy import require_tenant_id
from controlplane.trace import current_trace_id
from execution.models import Fill, Order
from execution.risk.selectors import trading_state_of
from bots.timeframes import timeframe_delta
from observatory.arb_panel import arb_panel, is_scanner
from observatory.banner import page_status
from observatory.links import admin_url, trace_url
from observatory.money_panel import money_panel
from observatory.funding_panel import basis_pnl_panel, is_funding_bot
from observatory.scanner_gates_panel import is_quote_bot, scanner_gates_panel
from oversight.models import SupervisorBreach
from traces.models import ReasonCode, TickTrace
from traces.selectors import bot_traces, why_not, why_not_window

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)
DECISIONS_SHOWN = 50
AUDIT_SHOWN = 30
STALE_VERDICT_BARS = 5  # a verdict older than this many of the bot's bars is no longer "now"

# One colour per reason in the timeline strip and its legend; decisions are green.
REASON_COLOURS = {
    ReasonCode.MARKET_CLOSED: "#64748b",
    ReasonCode.DATA_UNAVAILABLE: "#f97316",
    ReasonCode.DATA_STALE: "#f59e0b",
    ReasonCode.NO_SIGNAL: "#94a3b8",
    ReasonCode.ALREADY_AT_TARGET: "#3b82f6",
    ReasonCode.RISK_BLOCKED: "#dc2626",
    ReasonCode.AUTONOMY_NOT_ALLOWED: "#a855f7",
    ReasonCode.KILLED: "#7f1d1d",
    ReasonCode.RETIRED: "#44403c",
    ReasonCode.INTEGRATION_MISSING: "#db2777",
    ReasonCode.RECONCILE_MISMATCH: "#b91c1c",
    ReasonCode.COOLDOWN: "#0ea5e9",
    ReasonCode.TICK_ERROR: "#111827",
    ReasonCode.TICK_LATE: "#78716c",
}
DECISION_COLOUR = "#16a34a"

# What passes each autonomy gate (oversight.autonomy.evaluate_bot names them).
GATE_FIXES = {
    "backtest_passed": "Run a backtest of the bot's current parameters that classifies PASS.",
    "no_reconcile_mismatch": "Reconcile the bot and resolve the mismatch (accept the venue or flatten).",
    "paper_trades": "Keep paper trading until the bot has made enough trades.",
    "paper_days": "Keep paper trading for more days.",
    "paper_parity": "Paper results must track the backtest of the same bars: check fills, fees and slippage.",
    "no_open_risk_incidents": "Resolve the bot's open risk incidents (Risk incidents page).",
    "data_healthy": "Fix the market data of the bot's instruments (import bars or fix the provider).",
    "live_integrations_ready": "Enter and verify the keys the live stage needs (Connections).",
    "no_decay": "The latest decay re-backtest must PASS: re-tune or demote the bot.",
    "oos_robustness": "The out-of-sample Sharpe must hold up against in-sample: run a matrix with a holdout.",
    "paper_parity_high": "Paper results must track the backtest more closely.",
    "paper_trades_double": "Keep paper trading until the bot has made twice the minimum trades.",
    "reconcile_matched": "Reconcile the bot with its venue until the latest report is MATCHED.",
    # A scanner's (quote strategy's) evidence: its quote replay, and its paper scans held against it.
    "quote_replay_passed": "Replay the scanner over recorded quotes (a replay runner) until its numbers meet the "
    "thresholds in the scanner gates panel.",
    "quote_replay_parity": "Paper-scan a window, then replay the same window: their intents must match.",
    "quote_replay_parity_high": "The paper scans' intents must match the replay's more closely.",
}


def _panel(name: str, read, *args) -> dict:
    """A panel's read, or what it could not know: a failure is shown, never a blank that reads as nothing."""
    try:
        with transaction.atomic():  # a savepoint: a failed statement must not abort the page's transaction
            return {"ok": True, **read(*args)}
    except Exception as exc:  # a failing read must not take the other panels down with it
        logger.exception("bot page: reading the %s panel failed", name)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace_id": current_trace_id()}


def parse_window(request, now: datetime) -> tuple[datetime, datetime, str | None]:
    """The window from ``?from=&to=`` (ISO 8601), default the last 24 hours; an unreadable bound is named."""
    error = None
    now = now.replace(microsecond=0)
    end, start = now, now - DEFAULT_WINDOW
    raw_to, raw_from = request.GET.get("to", "").strip(), request.GET.get("from", "").strip()
    if raw_to:
        parsed = parse_datetime(raw_to.replace(" ", "+"))
        if parsed is None:
            error = f"'to' is not a date and time: {raw_to!r}; showing the last 24 hours."
        else:
            end = parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
            start = end - DEFAULT_WINDOW
    if raw_from and error is None:
        parsed = parse_datetime(raw_from.replace(" ", "+"))
        if parsed is None:
            error = f"'from' is not a date and time: {raw_from!r}; showing the last 24 hours."
            end, start = now, now - DEFAULT_WINDOW
        else:
            start = parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    if start >= end:
        error, end, start = "'from' must be before 'to'; showing the last 24 hours.", now, now - DEFAULT_WINDOW
    return start, end, error


def _header(bot: Bot) -> dict:
    try:
        strategy = get_strategy(bot.strategy)
    except KeyError:
        strategy = None
    specs = {spec.name: spec for spec in strategy.params} if strategy else {}
    parameters = [
        {
            "name": name,
            "value": value,
            "description": specs[name].description if name in specs else "",
            "default": specs[name].default if name in specs else None,
        }
        for name, value in sorted((bot.parameters or {}).items())
    ]
    runner = Runner.objects.filter(bot=bot).order_by("-started_at", "-id").first()
    stale_before = timezone.now() - timedelta(seconds=settings.RUNNER_HEARTBEAT_STALE_SECONDS)
    return {
        "strategy_description": strategy.description if strategy else "unknown strategy",
        "parameters": parameters,
        "trading_state": trading_state_of(bot_id=bot.id),
        "runner": None
        if runner is None
        else {
            "id": runner.id,
            "status": runner.status,
            "mode": runner.mode,
            "url": admin_url("bots_runner", runner.id),
            "active": runner.status in Runner.ACTIVE_STATUSES,
            "last_heartbeat_at": runner.last_heartbeat_at,
            "last_tick_at": runner.last_tick_at,
            "heartbeat_stale": runner.status in Runner.ACTIVE_STATUSES
            and (runner.last_heartbeat_at is None or runner.last_heartbeat_at < stale_before),
            "stop_reason": runner.stop_reason,
        },
        "risk_limits": sorted((bot.risk_limits or {}).items()),
        "breaches": list(
            SupervisorBreach.objects.filter(bot=bot, cleared_at__isnull=True, step__gt=SupervisorBreach.Step.PENDING)
            .order_by("-step", "first_seen")
            .values("trigger", "step", "value", "threshold", "first_seen", "last_seen")
        ),
    }


def _strip(segments: list[tuple[str, str, int]]) -> list[dict]:
    total = sum(n for _, _, n in segments) or 1
    return [
        {"label": label, "colour": colour, "count": n, "percent": round(100 * n / total, 2)}
        for label, colour, n in segments
        if n
    ]


# The window in time order, for the strip: per slice of the window, how many ticks of each kind or reason. One
# statement on the one-per-bar index (kind and reason are INCLUDE columns), pruned to the window's partitions.
_TIMELINE_SQL = """
SELECT width_bucket(extract(epoch FROM bar_ts), %(start)s, %(end)s, %(slices)s) AS slice,
       coalesce(reason_code, 'decision') AS what, count(*)
FROM traces_ticktrace
WHERE tenant_id = %(tenant_id)s AND bot_id = %(bot_id)s AND context = 'tick'
  AND bar_ts >= %(start_ts)s AND bar_ts < %(end_ts)s
GROUP BY 1, 2
"""
TIMELINE_SLICES = 96


def _timeline(bot: Bot, start: datetime, end: datetime) -> list[dict]:
    """The window cut into TIMELINE_SLICES equal slices, each coloured by what its ticks said: a decision if any
    was taken, else the reason most of its ticks gave; a slice without a tick says so (grey, "no tick")."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', 'off', true)")
        cursor.execute(
            _TIMELINE_SQL,
            {
                "tenant_id": require_tenant_id(),
                "bot_id": bot.id,
                "slices": TIMELINE_SLICES,
                "start": start.timestamp(),
                "end": end.timestamp(),
                "start_ts": start,
                "end_ts": end,
            },
        )
        found: dict[int, dict[str, int]] = {}
        for index, what, count in cursor.fetchall():
            found.setdefault(index, {})[what] = count
    width = (end - start) / TIMELINE_SLICES
    slices = []
    for index in range(1, TIMELINE_SLICES + 1):
        counts = found.get(index, {})
        if not counts:
            what, colour = "no tick", "transparent"
        elif "decision" in counts:
            what, colour = "decision", DECISION_COLOUR
        else:
            what = max(sorted(counts), key=lambda code: counts[code])
            colour = REASON_COLOURS[ReasonCode(what)]
        begins = start + (index - 1) * width
        detail = ", ".join(f"{code} {n}" for code, n in sorted(counts.items(), key=lambda item: -item[1]))
        slices.append(
            {
                "what": what,
                "colour": colour,
                "from": begins,
                "to": begins + width,
                "title": f"{begins:%m-%d %H:%M}: {detail or 'no tick'}",
            }
        )
    return slices


def _why_not(bot: Bot, start: datetime, end: datetime) -> dict:
    verdict = why_not(bot_id=bot.id)
    if verdict is not None and verdict["reason_code"]:
        verdict = {
            **verdict,
            "reason_text": ReasonCode(verdict["reason_code"]).label,
            "colour": REASON_COLOURS[ReasonCode(verdict["reason_code"])],
            "details_rows": sorted((verdict.get("details") or {}).items()),
        }
    if verdict is not None:
        verdict["trace_url"] = trace_url(verdict.get("trace_id"))
        # The verdict is the latest tick's: once ticks stop it describes the past, and the page says how old it is.
        age = timezone.now() - verdict["latest_bar_ts"]
        verdict["age"] = age
        verdict["stale"] = age > STALE_VERDICT_BARS * timeframe_delta(bot.timeframe)
    window = why_not_window(bot_id=bot.id, start=start, end=end)
    reasons = [
        {**r, "reason_text": ReasonCode(r["reason_code"]).label, "colour": REASON_COLOURS[ReasonCode(r["reason_code"])]}
        for r in window["reasons"]
    ]
    segments = [("decision", DECISION_COLOUR, window["decisions"]["count"])]
    segments += [(r["reason_code"], r["colour"], r["count"]) for r in reasons]
    return {
        "verdict": verdict,
        "window": {**window, "reasons": reasons},
        "strip": _strip(segments),
        "timeline": _timeline(bot, start, end) if window["traces"] else [],
    }


def _readable(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _signal_rows(signal: dict) -> list[tuple[str, str]]:
    return [(key, _readable(value)) for key, value in sorted((signal or {}).items()) if key != "target"]


def _decisions(bot: Bot, start: datetime, end: datetime) -> dict:
    traces = list(
        bot_traces(bot_id=bot.id, kind=TickTrace.Kind.DECISION, since=start, until=end, context=TickTrace.Context.TICK)[
            :DECISIONS_SHOWN
        ]
    )
    intent_ids = [t.intent_id for t in traces if t.intent_id]
    orders: dict[int, list[Order]] = {}
    for order in Order.objects.filter(intent_id__in=intent_ids).order_by("id"):
        orders.setdefault(order.intent_id, []).append(order)
    fills: dict[int, list[dict]] = {}
    for fill in Fill.objects.filter(order__intent_id__in=intent_ids).order_by("id").values("order__intent_id", "id"):
        fills.setdefault(fill["order__intent_id"], []).append(
            {"id": fill["id"], "url": admin_url("execution_fill", fill["id"])}
        )
    rows = []
    for trace in traces:
        sent = orders.get(trace.intent_id, [])
        rows.append(
            {
                "bar_ts": trace.bar_ts,
                "instrument": trace.instrument,
                "target": (trace.signal or {}).get("target"),
                "signal": _signal_rows(trace.signal),
                "orders": [
                    {
                        "id": o.id,
                        "side": o.side,
                        "quantity": o.quantity,
                        "status": o.status,
                        "url": admin_url("execution_order", o.id),
                    }
                    for o in sent
                ],
                "fills": fills.get(trace.intent_id, []),
                "intent_id": trace.intent_id,
                "intent_url": admin_url("execution_tradeintent", trace.intent_id),
                "trace_id": trace.trace_id,
                "trace_url": trace_url(trace.trace_id),
            }
        )
    return {"rows": rows, "shown": DECISIONS_SHOWN}


def _autonomy(bot: Bot) -> dict:
    score = AutonomyScore.objects.filter(bot=bot).order_by("-id").first()
    if score is None:
        return {"score": None}
    gates = [
        {**gate, "fix": "" if gate.get("passed") else GATE_FIXES.get(gate.get("gate"), "")}
        for gate in score.gates or []
    ]
    return {
        "score": score,
        "percent": round(100 * score.score),
        "gates": gates,
        "passed": sum(1 for g in gates if g.get("passed")),
        "trace_url": trace_url(score.trace_id),
        "breakdown": sorted((score.breakdown or {}).items()),
    }


def _audit(bot: Bot) -> dict:
    """The bot's own events and its runners' (start, stop, restart are audited on the runner)."""
    runner_ids = [str(pk) for pk in Runner.objects.filter(bot=bot).values_list("id", flat=True)]
    events = list(
        AuditEvent.objects.filter(
            Q(resource_type="bot", resource_id=str(bot.id)) | Q(resource_type="runner", resource_id__in=runner_ids)
        ).order_by("-created_at", "-id")[:AUDIT_SHOWN]
    )
    return {
        "events": [
            {"e": e, "trace_url": trace_url(e.trace_id), "url": admin_url("controlplane_auditevent", e.id)}
            for e in events
        ],
        "shown": AUDIT_SHOWN,
    }


def _minute(moment: datetime) -> str:
    """A window bound as the form shows it: ISO 8601 in UTC to the minute (seconds only when not zero)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if moment.second or moment.microsecond else "%Y-%m-%dT%H:%MZ")


def bot_page_data(request, bot: Bot) -> dict:
    now = timezone.now()
    start, end, window_error = parse_window(request, now)
    status = page_status(request)
    degraded = None
    if status is None:
        degraded = {"status": "UNKNOWN", "blockers": []}
    elif status["status"] != OK:
        degraded = {
            "status": status["status"],
            "blockers": status.get("blockers") or [],
            "trace_url": trace_url(status.get("trace_id")),
        }
    return {
        "bot": bot,
        "now": now,
        "degraded": degraded,
        "window_start": start,
        "window_end": end,
        "window_error": window_error,
        "window_start_text": _minute(start),
        "window_end_text": _minute(end),
        "window_previous": urlencode({"from": (start - (end - start)).isoformat(), "to": start.isoformat()}),
        "window_next": urlencode({"from": end.isoformat(), "to": (end + (end - start)).isoformat()}),
        "header": _panel("header", _header, bot),
        "why_not": _panel("why not trading", _why_not, bot, start, end),
        "decisions": _panel("why it traded", _decisions, bot, start, end),
        "autonomy": _panel("autonomy", _autonomy, bot),
        "money": _panel("money", money_panel, bot),
        "arbitrage": _panel("arbitrage", arb_panel, bot) if is_scanner(bot) else {"ok": True, "scanner": False},
        "scanner_gates": _panel("scanner gates", scanner_gates_panel, bot, request.user)
        if is_quote_bot(bot)
        else {"ok": True, "scanner": False},
        "audit": _panel("audit trail", _audit, bot),
        # Funding scanners only: other bots' pages pay no query for a panel they never show.
        "basis_pnl": _panel("basis pnl", basis_pnl_panel, bot)
        if is_funding_bot(bot)
        else {"ok": True, "applies": False},
    }
