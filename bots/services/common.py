"""Helpers every lifecycle service shares: actor labels, row locks, illegal transitions, config checks."""

from __future__ import annotations

from typing import Any

from bots.models import Bot
from bots.risk_limits import InvalidRiskLimits, parse_risk_limits
from bots.strategies import StrategyParameterError, UnknownStrategy, get_strategy
from controlplane.errors import ControlPlaneError, ErrorCode


CONFIG_FIELDS = ("strategy", "parameters", "instruments", "timeframe", "venue", "data_source")
EDITABLE_FIELDS = (*CONFIG_FIELDS, "name", "risk_limits")


def _actor_label(actor, actor_name: str | None) -> str:
    if actor_name:
        return actor_name
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return "system"


def _illegal(resource: str, current: str, requested: str, why: str = "") -> ControlPlaneError:
    return ControlPlaneError(
        ErrorCode.ILLEGAL_TRANSITION,
        f"{resource} cannot go from {current} to {requested}." + (f" {why}" if why else ""),
        details={"current": current, "requested": requested},
    )


def _locked_bot(bot_id: int) -> Bot:
    bot = Bot.objects.select_for_update().filter(pk=bot_id).first()
    if bot is None:
        raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No bot {bot_id} in this tenant.")
    return bot


def _validated_config(strategy_name: str, parameters: Any) -> tuple[dict, str]:
    try:
        strategy = get_strategy(strategy_name)
    except UnknownStrategy as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"strategy": [str(exc.args[0])]}) from None
    try:
        clean = strategy.validate(parameters)
    except StrategyParameterError as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"parameters": exc.errors}) from None
    return clean, strategy.parameters_hash(clean)


def _validated_risk_limits(risk_limits: Any) -> dict:
    """Limits the risk engine can read, or VALIDATION_ERROR naming the limit: an unreadable limit would halt the bot."""
    if not isinstance(risk_limits, dict):
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"risk_limits": ["Must be an object."]})
    try:
        parse_risk_limits(risk_limits)
    except InvalidRiskLimits as exc:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"risk_limits": [str(exc)]}) from None
    return risk_limits
