"""Reads of the operators' risk controls that the API and the bot page share."""

from __future__ import annotations


def trading_state_of(*, bot_id: int | None) -> dict:
    """The trading state of a bot (or, with ``bot_id`` None, of the tenant in context): no row means ACTIVE, set
    by nobody."""
    from execution.models import TradingControl, TradingStateChoices

    control = (
        TradingControl.objects.filter(bot_id=bot_id).first()
        if bot_id is not None
        else (TradingControl.objects.filter(bot__isnull=True).first())
    )
    return {
        "scope": "bot" if bot_id is not None else "tenant",
        "bot_id": bot_id,
        "state": control.state if control else TradingStateChoices.ACTIVE,
        "reason": control.reason if control else "",
        "set_by": control.set_by if control else None,
        "updated_at": control.updated_at if control else None,
    }


def tenant_risk_limits() -> dict:
    """The tenant's own risk limits (of the tenant in context): no row means none were ever set."""
    from execution.models import TradingControl

    control = TradingControl.objects.filter(bot__isnull=True).first()
    if control is None:
        return {"risk_limits": {}, "set_by": None, "updated_at": None}
    return {
        "risk_limits": control.risk_limits or {},
        "set_by": control.set_by or None,
        "updated_at": control.updated_at,
    }
