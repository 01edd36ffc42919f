"""Pre-trade risk limits as pure functions over plain values: no models, no database, no clock.

The tick and the OMS both call :func:`check_order` (an intent passes it twice: when it is made and again just
before it is sent), once per scope whose limits apply, typically the bot's and the tenant's, each with that
scope's own state. Every check that runs is reported with the values it compared, so a decision trace can show
what passed and a refusal names the limit and the numbers. A limit left as ``None`` is not configured and is not
checked; the trading state is always checked.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from execution.fill_model import Side  # the one order side: lower case, as orders, legs and fills store it

RATE_WINDOW = timedelta(minutes=1)


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"  # only orders that shrink exposure pass
    HALTED = "HALTED"


@dataclass(frozen=True)
class OrderRequest:
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal  # the limit price, or the reference price (latest close) of a market order
    at: datetime
    multiplier: Decimal = Decimal(1)
    session: str | None = None  # the caller's label for the session it trades in (e.g. "RTH", "ETH")

    def __post_init__(self):
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")
        if self.price <= 0:
            raise ValueError(f"price must be positive, got {self.price}")
        if self.multiplier <= 0:
            raise ValueError(f"multiplier must be positive, got {self.multiplier}")
        if self.at.tzinfo is None:
            raise ValueError("at must be an aware datetime")

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price * self.multiplier


@dataclass(frozen=True)
class RecentOrder:
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    at: datetime


@dataclass(frozen=True)
class RiskLimits:
    max_position: Decimal | None = None  # absolute units after the order
    max_order_size: Decimal | None = None
    max_notional: Decimal | None = None  # of one order: quantity x price x multiplier
    max_daily_loss: Decimal | None = None  # a positive amount; at or past it only reducing orders pass
    max_orders_per_minute: int | None = None
    max_cancels_per_minute: int | None = None
    duplicate_window: timedelta | None = None
    allowed_instruments: frozenset[str] | None = None
    allowed_sessions: frozenset[str] | None = None
    # Not an order check: the drawdown circuit breaker (execution.risk.breakers) reads it every minute and kills the bot
    # once its equity (realized + unrealized PnL) falls more than this amount below its high-water mark.
    max_drawdown: Decimal | None = None


# The limits an autonomy tier scales (execution.risk.state): sizes and losses. Rates, sets and windows are not
# amounts of risk and stay as configured.
SCALED_BY_AUTONOMY = ("max_position", "max_order_size", "max_notional", "max_daily_loss", "max_drawdown")


def scaled_limits(limits: RiskLimits, factor: Decimal) -> RiskLimits:
    """``limits`` with each size and loss limit multiplied by ``factor``; a limit not configured stays None."""
    return replace(
        limits,
        **{name: getattr(limits, name) * factor for name in SCALED_BY_AUTONOMY if getattr(limits, name) is not None},
    )


AUTONOMY_CHECK = "autonomy_allowed"  # the check's name; a refusal by it is reported as AUTONOMY_NOT_ALLOWED


@dataclass(frozen=True)
class AutonomyStatus:
    """Whether the system status lets a LIVE bot trade on its own, and if not which status blockers say why."""

    allowed: bool
    system_status: str
    blockers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RiskState:
    """The scope's state when the order is checked: position in the order's instrument, today's PnL, recent
    activity (any age: only the rate window counts), and its trading state."""

    position: Decimal = Decimal(0)
    daily_pnl: Decimal = Decimal(0)
    trading_state: TradingState = TradingState.ACTIVE
    recent_orders: tuple[RecentOrder, ...] = ()
    recent_cancels: tuple[datetime, ...] = ()
    # Set for a LIVE bot's scope only: while the system is not OK its orders may only reduce exposure.
    autonomy: AutonomyStatus | None = None


@dataclass(frozen=True)
class RiskScope:
    name: str  # "bot", "tenant", ...
    limits: RiskLimits
    state: RiskState


@dataclass(frozen=True)
class CheckResult:
    scope: str
    limit: str
    passed: bool
    values: dict

    def as_dict(self) -> dict:
        return {"scope": self.scope, "limit": self.limit, "passed": self.passed, "values": self.values}


@dataclass(frozen=True)
class RiskDecision:
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def refusals(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.passed)


def reduces_exposure(position: Decimal, side: Side, quantity: Decimal) -> bool:
    """True when the order moves the position toward zero without crossing it."""
    return position != 0 and side.sign * position < 0 and quantity <= abs(position)


def _within_window(times, at: datetime) -> int:
    return sum(1 for t in times if at - RATE_WINDOW < t <= at)


def _json(value):
    """Decimals and counts as strings, so trace JSON keeps exact values."""
    return value if value is None or isinstance(value, (bool, list, str)) else str(value)


def _scope_checks(order: OrderRequest, scope: RiskScope) -> list[CheckResult]:
    limits, state = scope.limits, scope.state
    reducing = reduces_exposure(state.position, order.side, order.quantity)
    new_position = state.position + order.side.sign * order.quantity
    results: list[CheckResult] = []

    def add(name: str, passed: bool, /, **values) -> None:
        results.append(CheckResult(scope.name, name, passed, {k: _json(v) for k, v in values.items()}))

    add(
        "trading_state",
        state.trading_state is TradingState.ACTIVE or (state.trading_state is TradingState.REDUCE_ONLY and reducing),
        trading_state=state.trading_state.value,
        position=state.position,
        side=order.side.value,
        quantity=order.quantity,
        reduces_exposure=reducing,
    )
    if state.autonomy is not None:
        add(
            AUTONOMY_CHECK,
            state.autonomy.allowed or reducing,
            system_status=state.autonomy.system_status,
            blockers=list(state.autonomy.blockers),
            position=state.position,
            side=order.side.value,
            quantity=order.quantity,
            reduces_exposure=reducing,
        )
    if limits.allowed_instruments is not None:
        add(
            "allowed_instruments",
            order.instrument in limits.allowed_instruments,
            instrument=order.instrument,
            allowed=sorted(limits.allowed_instruments),
        )
    if limits.allowed_sessions is not None:
        add(
            "allowed_sessions",
            order.session in limits.allowed_sessions,
            session=order.session,
            allowed=sorted(limits.allowed_sessions),
        )
    if limits.max_order_size is not None:
        add(
            "max_order_size",
            order.quantity <= limits.max_order_size,
            quantity=order.quantity,
            limit=limits.max_order_size,
        )
    if limits.max_notional is not None:
        add("max_notional", order.notional <= limits.max_notional, notional=order.notional, limit=limits.max_notional)
    if limits.max_position is not None:
        add(
            "max_position",
            reducing or abs(new_position) <= limits.max_position,
            position=state.position,
            position_after=new_position,
            limit=limits.max_position,
            reduces_exposure=reducing,
        )
    if limits.max_daily_loss is not None:
        add(
            "max_daily_loss",
            reducing or state.daily_pnl > -limits.max_daily_loss,
            daily_pnl=state.daily_pnl,
            limit=limits.max_daily_loss,
            reduces_exposure=reducing,
        )
    if limits.max_orders_per_minute is not None:
        count = _within_window((o.at for o in state.recent_orders), order.at)
        add(
            "max_orders_per_minute",
            count + 1 <= limits.max_orders_per_minute,
            orders_last_minute=count,
            limit=limits.max_orders_per_minute,
        )
    if limits.duplicate_window is not None:
        duplicate = next(
            (
                o
                for o in state.recent_orders
                if o.instrument == order.instrument
                and o.side == order.side
                and o.quantity == order.quantity
                and o.price == order.price
                and order.at - limits.duplicate_window <= o.at <= order.at
            ),
            None,
        )
        add(
            "duplicate_order",
            duplicate is None,
            side=order.side.value,
            quantity=order.quantity,
            price=order.price,
            window_seconds=int(limits.duplicate_window.total_seconds()),
            previous_at=duplicate.at.isoformat() if duplicate else None,
        )
    return results


def check_order(order: OrderRequest, scopes: Sequence[RiskScope]) -> RiskDecision:
    """Every configured limit of every scope, in a fixed order (deterministic traces); passes only if all pass."""
    if not scopes:
        raise ValueError("check_order needs at least one scope: no limits known means no order (fail closed)")
    return RiskDecision(tuple(result for scope in scopes for result in _scope_checks(order, scope)))


def check_cancel(at: datetime, scopes: Sequence[RiskScope], *, cancels: int = 1) -> RiskDecision:
    """Cancels shrink risk, so only their rate is limited (a HALTED scope may still cancel). ``cancels``: how many
    venue cancels the request makes (one per open order), each counted against the limit."""
    if not scopes:
        raise ValueError("check_cancel needs at least one scope")
    results = []
    for scope in scopes:
        if scope.limits.max_cancels_per_minute is None:
            continue
        count = _within_window(scope.state.recent_cancels, at)
        results.append(
            CheckResult(
                scope.name,
                "max_cancels_per_minute",
                count + cancels <= scope.limits.max_cancels_per_minute,
                {
                    "cancels_last_minute": str(count),
                    "cancels_requested": str(cancels),
                    "limit": str(scope.limits.max_cancels_per_minute),
                },
            )
        )
    return RiskDecision(tuple(results))


def cancel_retry_after(at: datetime, scopes: Sequence[RiskScope], *, cancels: int = 1) -> int | None:
    """Whole seconds until :func:`check_cancel` would pass for ``cancels`` more, as the last minute's cancels age
    out of the window; None when no wait is enough (more cancels than a scope's limit)."""
    wait = timedelta(0)
    for scope in scopes:
        limit = scope.limits.max_cancels_per_minute
        if limit is None:
            continue
        if cancels > limit:
            return None
        recent = sorted(t for t in scope.state.recent_cancels if at - RATE_WINDOW < t <= at)
        excess = len(recent) + cancels - limit
        if excess > 0:
            wait = max(wait, recent[excess - 1] + RATE_WINDOW - at)
    return max(1, math.ceil(wait.total_seconds())) if wait else 0
