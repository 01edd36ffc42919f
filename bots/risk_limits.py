"""The schema of a bot's (and a tenant's) risk limits: which limits exist and what their values may be.

Part of the bot's configuration, so it lives with the bot: bots validate limits before storing them, and the risk
engine (execution.risk.state) reads stored limits through the same parser, so a limit the service accepted is one
the engine can read. Unknown keys are other settings (e.g. circuit breaker thresholds) and are left alone.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

DECIMAL_LIMITS = ("max_position", "max_order_size", "max_notional", "max_daily_loss", "max_drawdown")
INT_LIMITS = ("max_orders_per_minute", "max_cancels_per_minute")
SET_LIMITS = ("allowed_instruments", "allowed_sessions")
KNOWN_LIMITS = (*DECIMAL_LIMITS, *INT_LIMITS, *SET_LIMITS, "duplicate_window_seconds")


class InvalidRiskLimits(ValueError):
    """A limit that cannot be read. A stored one HALTs its scope: an unreadable limit is not no limit."""


def parse_risk_limits(data: dict | None) -> dict:
    """Stored limits (JSON) to typed values keyed as ``execution.risk.checks.RiskLimits`` takes them; raises
    InvalidRiskLimits naming the key and the value it cannot read."""
    if not data:
        return {}
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
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            raise InvalidRiskLimits(f"risk limit {key!r} has an invalid value {raw!r}") from None
    return values
