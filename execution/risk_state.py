"""The risk state every order check needs, read for many bots at once in a constant number of queries.

The tick checks up to 1,000 bots of one instrument per batch, so nothing here queries per bot: trading states,
positions, recent orders and cancels, and today's PnL are each one query for the whole batch, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Q, Sum

from execution.models import Instrument, Order, StrategyPosition, TradingControl
from execution.risk import (
    RATE_WINDOW,
    RecentOrder,
    RiskLimits,
    RiskScope,
    RiskState,
    Side,
    TradingState,
)
from traces.models import ProfitVariables

DECIMAL_LIMITS = ("max_position", "max_order_size", "max_notional", "max_daily_loss", "max_drawdown")
INT_LIMITS = ("max_orders_per_minute", "max_cancels_per_minute")
SET_LIMITS = ("allowed_instruments", "allowed_sessions")
KNOWN_LIMITS = (*DECIMAL_LIMITS, *INT_LIMITS, *SET_LIMITS, "duplicate_window_seconds")


class InvalidRiskLimits(ValueError):
    """A stored limit that cannot be read. The scope is then HALTED: an unreadable limit is not no limit."""


def limits_from_json(data: dict | None) -> RiskLimits:
    """Bot and tenant limits as stored (JSON) to :class:`RiskLimits`; raises InvalidRiskLimits naming the key."""
    data = data or {}
    if not isinstance(data, dict):
        raise InvalidRiskLimits("risk_limits must be an object")
    values: dict = {}
    for key, raw in data.items():
        if raw is None:
            continue
        try:
            if key in DECIMAL_LIMITS:
                value = Decimal(str(raw))
                if value < 0 or not value.is_finite():
                    raise ValueError
                values[key] = value
            elif key in INT_LIMITS:
                if isinstance(raw, bool) or int(raw) != raw or int(raw) < 0:
                    raise ValueError
                values[key] = int(raw)
            elif key in SET_LIMITS:
                if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                    raise ValueError
                values[key] = frozenset(raw)
            elif key == "duplicate_window_seconds":
                if isinstance(raw, bool) or int(raw) != raw or int(raw) <= 0:
                    raise ValueError
                values["duplicate_window"] = timedelta(seconds=int(raw))
            # Unknown keys are other apps' settings (e.g. circuit breaker thresholds): ignored here.
        except (ValueError, TypeError, InvalidOperation):
            raise InvalidRiskLimits(f"risk limit {key!r} has an invalid value {raw!r}") from None
    return RiskLimits(**values)


def validate_risk_limits(data: dict) -> None:
    """What bots call (through bots.hooks) before storing a bot's limits; raises InvalidRiskLimits (a ValueError)."""
    limits_from_json(data)


def _scope(name: str, limits_json, state_kwargs: dict) -> RiskScope:
    try:
        limits = limits_from_json(limits_json)
    except InvalidRiskLimits:
        return RiskScope(name, RiskLimits(), RiskState(**{**state_kwargs, "trading_state": TradingState.HALTED}))
    return RiskScope(name, limits, RiskState(**state_kwargs))


def _instrument(instrument: Instrument | str) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    return Instrument.objects.get(symbol=instrument)


def _duplicate_window(limits_json: Iterable) -> timedelta:
    longest = RATE_WINDOW
    for data in limits_json:
        seconds = (data or {}).get("duplicate_window_seconds") if isinstance(data, dict) else None
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            longest = max(longest, timedelta(seconds=seconds))
    return longest


def risk_scopes_for_bots(*, bots: Sequence, instrument: Instrument | str, at: datetime) -> dict[int, list[RiskScope]]:
    """For each bot, ``[bot scope, tenant scope]`` with limits and the state at ``at`` (positions in
    ``instrument``; orders and cancels of any instrument for the rate limits). Five queries for any number of bots.

    Daily PnL is today's (UTC) realized PnL after fees, as the OMS keeps it in ``ProfitVariables``.
    """
    if not bots:
        return {}
    instrument = _instrument(instrument)
    bot_ids = [bot.id for bot in bots]
    tenant_ids = sorted({bot.tenant_id for bot in bots})

    controls = list(TradingControl.unscoped.filter(tenant_id__in=tenant_ids)
                    .filter(Q(bot_id__in=bot_ids) | Q(bot__isnull=True))
                    .values("tenant_id", "bot_id", "state", "risk_limits"))
    bot_state = {c["bot_id"]: TradingState(c["state"]) for c in controls if c["bot_id"] is not None}
    tenant_control = {c["tenant_id"]: c for c in controls if c["bot_id"] is None}

    bot_position = dict(StrategyPosition.unscoped.filter(bot_id__in=bot_ids, instrument=instrument)
                        .values_list("bot_id", "quantity"))
    tenant_position: dict[int, Decimal] = defaultdict(Decimal)
    for tenant_id, quantity in (StrategyPosition.unscoped.filter(tenant_id__in=tenant_ids, instrument=instrument)
                                .values("tenant_id").annotate(total=Sum("quantity"))
                                .values_list("tenant_id", "total")):
        tenant_position[tenant_id] = quantity or Decimal(0)

    window = _duplicate_window([bot.risk_limits for bot in bots]
                               + [c["risk_limits"] for c in tenant_control.values()])
    since = at - window
    recent_rows = (Order.unscoped.filter(tenant_id__in=tenant_ids, purpose=Order.Purpose.LEG)
                   .filter(Q(created_at__gt=since, created_at__lte=at)
                           | Q(cancelled_at__gt=at - RATE_WINDOW, cancelled_at__lte=at))
                   .values_list("tenant_id", "bot_id", "instrument__symbol", "side", "quantity", "limit_price",
                                "reference_price", "created_at", "cancelled_at"))
    orders_by_bot: dict[int, list[RecentOrder]] = defaultdict(list)
    orders_by_tenant: dict[int, list[RecentOrder]] = defaultdict(list)
    cancels_by_bot: dict[int, list[datetime]] = defaultdict(list)
    cancels_by_tenant: dict[int, list[datetime]] = defaultdict(list)
    for tenant_id, bot_id, symbol, side, quantity, limit_price, reference_price, created_at, cancelled_at in recent_rows:
        if since < created_at <= at:
            recent = RecentOrder(symbol, Side(side.upper()), quantity, limit_price or reference_price or Decimal(0),
                                 created_at)
            orders_by_bot[bot_id].append(recent)
            orders_by_tenant[tenant_id].append(recent)
        if cancelled_at is not None and at - RATE_WINDOW < cancelled_at <= at:
            cancels_by_bot[bot_id].append(cancelled_at)
            cancels_by_tenant[tenant_id].append(cancelled_at)

    pnl_rows = (ProfitVariables.unscoped.filter(tenant_id__in=tenant_ids, day=at.date())
                .values_list("tenant_id", "bot_id", "pnl"))
    bot_pnl: dict[int, Decimal] = {}
    tenant_pnl: dict[int, Decimal] = defaultdict(Decimal)
    for tenant_id, bot_id, pnl in pnl_rows:
        bot_pnl[bot_id] = pnl
        tenant_pnl[tenant_id] += pnl

    scopes: dict[int, list[RiskScope]] = {}
    for bot in bots:
        tenant = tenant_control.get(bot.tenant_id) or {}
        scopes[bot.id] = [
            _scope("bot", bot.risk_limits, {
                "position": bot_position.get(bot.id, Decimal(0)),
                "daily_pnl": bot_pnl.get(bot.id, Decimal(0)),
                "trading_state": bot_state.get(bot.id, TradingState.ACTIVE),
                "recent_orders": tuple(orders_by_bot.get(bot.id, ())),
                "recent_cancels": tuple(cancels_by_bot.get(bot.id, ())),
            }),
            _scope("tenant", tenant.get("risk_limits"), {
                "position": tenant_position.get(bot.tenant_id, Decimal(0)),
                "daily_pnl": tenant_pnl.get(bot.tenant_id, Decimal(0)),
                "trading_state": TradingState(tenant.get("state", TradingState.ACTIVE)),
                "recent_orders": tuple(orders_by_tenant.get(bot.tenant_id, ())),
                "recent_cancels": tuple(cancels_by_tenant.get(bot.tenant_id, ())),
            }),
        ]
    return scopes
