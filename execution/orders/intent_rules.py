"""The rules of intents, apart from their write path: legs and their validation, the request an idempotency key is
bound to (its hash and its lock), the guarded status transitions, and the first risk check (reference prices,
``risk_refusal``, ``reject``).

``execution.orders.intent_batches`` writes intents with these rules (``submit_intent`` and ``submit_intents``), and
the OMS re-checks with them before sending; ``execution.orders.intents`` is the public face callers import from.
Kept apart so the write path can build on them without importing the module that exposes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from bots.selectors import trading_block
from controlplane.books import book_for_venue
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import Bar, Instrument, IntentLeg, RiskIncident, TradeIntent
from execution.risk.checks import AUTONOMY_CHECK, OrderRequest, Side, check_order
from execution.risk.positions import latest_mark
from execution.risk.state import risk_scopes_for_bots
from integrations.venues.registry import known_venue

Status = TradeIntent.Status

# Guarded transitions (DESIGN.md invariant 6); each one is audited.
TRANSITIONS: dict[str, set[str]] = {
    Status.PENDING: {Status.ACCEPTED, Status.REJECTED, Status.CANCELLED},
    Status.ACCEPTED: {Status.WORKING, Status.FAILED, Status.CANCELLED},
    Status.WORKING: {Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.FAILED},
    Status.PARTIALLY_FILLED: {Status.FILLED, Status.CANCELLED, Status.FAILED},
}

# Refusals an operator must look at (they open a RiskIncident); rate limits and duplicates are routine.
INCIDENT_LIMITS = {"max_daily_loss", "max_position", "max_notional", "allowed_instruments"}

ORDER_TYPES = ("market", "limit", "stop")


@dataclass(frozen=True)
class LegSpec:
    venue: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    order_type: str = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True)
class IntentResult:
    intent: TradeIntent
    created: bool


def _decimal(value, field: str, errors: dict, *, positive: bool = True) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        errors[field] = ["Must be a decimal number."]
        return None
    if not number.is_finite() or (positive and number <= 0):
        errors[field] = ["Must be a positive number."]
        return None
    return number


def _validated_legs(
    legs: Sequence[LegSpec], instruments: dict[str, Instrument] | None = None
) -> list[tuple[LegSpec, Instrument]]:
    errors: dict[str, list[str]] = {}
    if not legs:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details={"legs": ["At least one leg is required."]})
    clean = []
    if instruments is None:
        symbols = {leg.symbol for leg in legs}
        instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    for index, leg in enumerate(legs):
        prefix = f"legs[{index}]"
        if not known_venue(leg.venue):
            errors[f"{prefix}.venue"] = [f"No venue adapter is installed for {leg.venue!r}."]
        instrument = instruments.get(leg.symbol)
        if instrument is None:
            errors[f"{prefix}.symbol"] = [f"Unknown instrument {leg.symbol!r}."]
        if leg.side not in ("buy", "sell"):
            errors[f"{prefix}.side"] = ["Must be buy or sell."]
        quantity = _decimal(leg.quantity, f"{prefix}.quantity", errors)
        if leg.order_type not in ORDER_TYPES:
            errors[f"{prefix}.order_type"] = ["Must be market, limit or stop."]
        limit = stop = None
        if leg.order_type == "limit" or leg.limit_price is not None:
            if leg.limit_price is None:
                errors[f"{prefix}.limit_price"] = ["A limit order needs a limit price."]
            else:
                limit = _decimal(leg.limit_price, f"{prefix}.limit_price", errors)
        if leg.order_type == "stop" or leg.stop_price is not None:
            if leg.stop_price is None:
                errors[f"{prefix}.stop_price"] = ["A stop order needs a stop price."]
            else:
                stop = _decimal(leg.stop_price, f"{prefix}.stop_price", errors)
        if instrument is not None and quantity is not None:
            clean.append((LegSpec(leg.venue, leg.symbol, leg.side, quantity, leg.order_type, limit, stop), instrument))
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    return clean


def request_hash(*, bot_id: int, legs: Sequence[LegSpec], bar_ts: datetime | None, failure_policy: str) -> str:
    """The body an idempotency key is bound to, canonical (1 == 1.0) so a retry of the same request matches."""

    def num(value):
        return None if value is None else format(Decimal(str(value)).normalize(), "f")

    body = {
        "bot": bot_id,
        "bar_ts": bar_ts.isoformat() if bar_ts else None,
        "failure_policy": failure_policy,
        "legs": [
            [
                leg.venue,
                leg.symbol,
                leg.side,
                num(leg.quantity),
                leg.order_type,
                num(leg.limit_price),
                num(leg.stop_price),
            ]
            for leg in legs
        ],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def idempotency_lock_key(tenant_id: int, key: str) -> int:
    digest = hashlib.sha256(f"intent:{tenant_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def intent_transition(
    intent: TradeIntent, to: str, *, actor=None, actor_name: str | None = "oms", detail: dict | None = None
) -> None:
    """Move a locked intent to ``to`` if the state machine allows it, audited in the caller's transaction."""
    if intent.status == to:
        return
    if to not in TRANSITIONS.get(intent.status, set()):
        raise ControlPlaneError(
            ErrorCode.ILLEGAL_TRANSITION,
            f"Intent {intent.pk} cannot go from {intent.status} to {to}.",
            details={"current": intent.status, "requested": to},
        )
    before = intent.status
    intent.status = to
    fields = ["status", "updated_at"]
    if detail is not None:
        intent.status_detail = detail
        fields.append("status_detail")
    intent.save(update_fields=fields)
    audit_record(
        action="intent.status",
        resource_type="intent",
        resource_id=intent.pk,
        actor=actor,
        actor_name=actor_name if actor is None else None,
        before={"status": before},
        after={"status": to, **({"detail": detail} if detail else {})},
    )


def reference_price(instrument: Instrument, leg: LegSpec | IntentLeg, bar_ts: datetime | None) -> Decimal | None:
    """The price a risk check values the order at: its limit or stop, else the decision bar's (or the latest) close."""
    if leg.order_type == "limit" and leg.limit_price is not None:
        return leg.limit_price
    if leg.order_type == "stop" and leg.stop_price is not None:
        return leg.stop_price
    if bar_ts is not None:
        close = (
            Bar.objects.filter(instrument=instrument, ts=bar_ts)
            .order_by("timeframe")
            .values_list("close", flat=True)
            .first()
        )
        if close is not None:
            return close
    mark = latest_mark(instrument)
    return mark.price if mark else None


def decision_bar_closes(pairs) -> dict[tuple[int, datetime], Decimal]:
    """The close :func:`reference_price` values a market order at, for many (instrument id, decision bar) pairs in
    one query: the bar at that time, the first timeframe by name. A pair with no bar is left out (its reference
    price is then the latest mark, read one instrument at a time, or none)."""
    pairs = {(instrument_id, bar_ts) for instrument_id, bar_ts in pairs if bar_ts is not None}
    if not pairs:
        return {}
    closes: dict[tuple[int, datetime], Decimal] = {}
    for instrument_id, ts, close in (
        Bar.objects.filter(instrument_id__in={i for i, _ in pairs}, ts__in={ts for _, ts in pairs})
        .order_by("instrument_id", "ts", "timeframe")
        .values_list("instrument_id", "ts", "close")
    ):
        if (instrument_id, ts) in pairs:
            closes.setdefault((instrument_id, ts), close)
    return closes


class BatchPrices:
    """``price_of`` for :func:`risk_refusal` over a batch of intents: the decision bars' closes of all its market
    legs read in one query (:func:`decision_bar_closes`), anything else as :func:`reference_price` reads it, once
    per instrument and bar."""

    def __init__(self, legs) -> None:
        """``legs``: (instrument id, order type, decision bar) of every leg of the batch."""
        self._prices: dict[tuple[int, datetime | None], Decimal | None] = dict(
            decision_bar_closes((i, bar_ts) for i, order_type, bar_ts in legs if order_type == "market")
        )

    def __call__(self, instrument, leg, bar_ts):
        if leg.order_type in ("limit", "stop"):  # its own price when it has one; reference_price decides
            return reference_price(instrument, leg, bar_ts)
        key = (instrument.id, bar_ts)
        if key not in self._prices:
            self._prices[key] = reference_price(instrument, leg, bar_ts)
        return self._prices[key]


_READ_NOW = object()


def risk_refusal(
    *,
    bot,
    legs: Sequence[tuple[IntentLeg | LegSpec, Instrument]],
    bar_ts: datetime | None,
    at: datetime,
    block=_READ_NOW,
    price_of: Callable[[Instrument, IntentLeg | LegSpec, datetime | None], Decimal | None] | None = None,
    scopes_of: Callable[[object, IntentLeg | LegSpec, Instrument], list] | None = None,
) -> tuple[dict | None, list[dict], dict[int, Decimal]]:
    """(refusal or None, every check run, reference price per leg). The refusal names the limit and its values.

    A caller checking many intents at once (``execution.orders.intent_batches``) passes what it read for all of
    them: the bot's ``block`` (``bots.selectors.trading_blocks``), ``price_of`` (the reference price) and
    ``scopes_of`` (the bot's risk scopes for the leg's instrument and book); the rule is the same."""
    if block is _READ_NOW:
        block = trading_block(bot)
    price_of = price_of or reference_price
    if block is not None:
        return (
            {
                "limit": "trading_block",
                "error_code": str(block.code),
                "message": block.message,
                "values": block.details or {},
            },
            [],
            {},
        )
    checks: list[dict] = []
    prices: dict[int, Decimal] = {}
    for index, (leg, instrument) in enumerate(legs):
        price = price_of(instrument, leg, bar_ts)
        if price is None:
            return (
                {
                    "limit": "reference_price",
                    "leg": index,
                    "error_code": "DATA_UNAVAILABLE",
                    "message": f"No bar of {instrument.symbol} to value the order with.",
                    "values": {"instrument": instrument.symbol},
                },
                checks,
                prices,
            )
        prices[index] = price
        # Checked against the book of the venue this leg goes to: a live leg never sees the paper position.
        if scopes_of is not None:
            scopes = scopes_of(bot, leg, instrument)
        else:
            scopes = risk_scopes_for_bots(
                bots=[bot], instrument=instrument, at=at, books={bot.id: book_for_venue(leg.venue)}
            )[bot.id]
        decision = check_order(
            OrderRequest(
                instrument=instrument.symbol,
                side=Side(leg.side),
                quantity=leg.quantity,
                price=price,
                at=at,
                multiplier=instrument.multiplier,
            ),
            scopes,
        )
        checks.extend({**check.as_dict(), "leg": index} for check in decision.checks)
        if not decision.passed:
            first = decision.refusals[0]
            refusal = {
                "limit": first.limit,
                "scope": first.scope,
                "leg": index,
                "values": first.values,
                "refusals": [{**r.as_dict(), "leg": index} for r in decision.refusals],
            }
            autonomy = next((r for r in decision.refusals if r.limit == AUTONOMY_CHECK), None)
            if autonomy is not None:
                refusal |= {
                    "error_code": str(ErrorCode.AUTONOMY_NOT_ALLOWED),
                    "message": "The system is not OK: this live order would open or grow a position.",
                    "autonomy": autonomy.values,
                }
            return refusal, checks, prices
    return None, checks, prices


def reject(intent: TradeIntent, refusal: dict, checks: list[dict], *, actor_name: str) -> None:
    """Store the refusal on the intent (REJECTED) and open an incident when the limit is one that matters."""
    intent.rejection, intent.risk_checks = refusal, checks
    intent.save(update_fields=["rejection", "risk_checks", "updated_at"])
    intent_transition(intent, Status.REJECTED, actor_name=actor_name, detail={"rejection": refusal})
    limits = {r["limit"] for r in refusal.get("refusals", [])} or {refusal["limit"]}
    for limit in sorted(limits & INCIDENT_LIMITS):
        incident = RiskIncident.objects.create(
            bot=intent.bot, kind=limit, intent=intent, details=refusal, trace_id=current_trace_id()
        )
        audit_record(
            action="risk_incident.open",
            resource_type="risk_incident",
            resource_id=incident.pk,
            actor_name=actor_name,
            after={"kind": limit, "bot_id": intent.bot_id, "intent_id": intent.pk},
        )


def validated_request(
    *,
    bot,
    legs: Sequence[LegSpec],
    idempotency_key: str,
    source: str,
    bar_ts,
    failure_policy: str,
    instruments: dict[str, Instrument] | None = None,
) -> tuple[str, list[tuple[LegSpec, Instrument]], str]:
    """(key, clean legs with their instruments, request hash) of one submission, or VALIDATION_ERROR naming each
    bad field. ``instruments`` (by symbol) saves the lookup when the caller read them for many requests."""
    errors = {}
    key = (idempotency_key or "").strip()
    if not key or len(key) > 255:
        errors["idempotency_key"] = ["Required, at most 255 characters."]
    if source not in TradeIntent.Source.values:
        errors["source"] = [f"Must be one of {', '.join(TradeIntent.Source.values)}."]
    if failure_policy not in TradeIntent.FailurePolicy.values:
        errors["failure_policy"] = [f"Must be one of {', '.join(TradeIntent.FailurePolicy.values)}."]
    if bar_ts is not None and timezone.is_naive(bar_ts):
        errors["bar_ts"] = ["Must carry a UTC offset."]
    if errors:
        raise ControlPlaneError(ErrorCode.VALIDATION_ERROR, details=errors)
    clean = _validated_legs(legs, instruments)
    body_hash = request_hash(
        bot_id=bot.id, legs=[leg for leg, _ in clean], bar_ts=bar_ts, failure_policy=failure_policy
    )
    return key, clean, body_hash
