"""Seams through which higher layers (execution, backtests) serve the lifecycle without bots importing them.

Each app registers its hooks at start-up (``AppConfig.ready``). With nothing registered the lifecycle fails
closed: a kill still records its cancel request, a reconcile refuses to report "flat", the LIVE gate fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PositionSnapshot:
    """Signed quantities per instrument: what our books say and what the venue says."""

    internal: dict[str, float]
    venue: dict[str, float]


@dataclass(frozen=True)
class PaperRecord:
    """A bot's paper-trading record, for the gate to LIVE."""

    trades: int
    days: int
    open_risk_incidents: int
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReconcileResolver:
    """How an operator's resolution of a reconcile mismatch reaches our books and the venue (execution serves it).

    ``book(*, bot, reconciliation, snapshot, action, reason, actor_name) -> dict`` runs inside the caller's
    transaction: it sets the bot's positions to the venue's and, for a flatten, records the closing orders
    (SUBMITTING, not yet sent). ``send(*, intent_ids) -> list[dict]`` runs after that commit and sends them."""

    book: Callable[..., dict]
    send: Callable[..., list[dict]]


# hook(*, cancel_request_id: int, scope: str, tenant_id: int | None, bot_id: int | None) -> None,
# called after the kill's transaction commits.
CancelHook = Callable[..., None]
# source(*, bot) -> PositionSnapshot; raise ControlPlaneError when the venue cannot answer.
PositionSource = Callable[..., PositionSnapshot]
# source(*, bot) -> PaperRecord
PaperRecordSource = Callable[..., PaperRecord]
# validator(risk_limits: dict) -> None; raises ValueError naming the limit and the value it cannot read.
RiskLimitsValidator = Callable[[dict], None]

_cancel_hooks: list[CancelHook] = []
_position_sources: dict[str, PositionSource] = {}
_paper_record_source: list[PaperRecordSource] = []
_risk_limits_validator: list[RiskLimitsValidator] = []
_reconcile_resolver: list[ReconcileResolver] = []


def register_cancel_hook(hook: CancelHook) -> None:
    if hook not in _cancel_hooks:
        _cancel_hooks.append(hook)


def cancel_hooks() -> list[CancelHook]:
    return list(_cancel_hooks)


def register_position_source(venue: str, source: PositionSource) -> None:
    _position_sources[venue] = source


def position_source_for(venue: str) -> PositionSource | None:
    return _position_sources.get(venue)


def register_paper_record_source(source: PaperRecordSource) -> None:
    _paper_record_source[:] = [source]


def paper_record_source() -> PaperRecordSource | None:
    return _paper_record_source[0] if _paper_record_source else None


def register_risk_limits_validator(validator: RiskLimitsValidator) -> None:
    """The risk engine (execution) knows which limits exist and what their values may be; bots validate through it."""
    _risk_limits_validator[:] = [validator]


def risk_limits_validator() -> RiskLimitsValidator | None:
    return _risk_limits_validator[0] if _risk_limits_validator else None


def register_reconcile_resolver(resolver: ReconcileResolver) -> None:
    _reconcile_resolver[:] = [resolver]


def reconcile_resolver() -> ReconcileResolver | None:
    return _reconcile_resolver[0] if _reconcile_resolver else None
