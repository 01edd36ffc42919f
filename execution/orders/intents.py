"""Intents: what strategies and operators want traded, with Stripe-style idempotency keys.

An intent is the only way into the OMS. It is checked against the risk limits when submitted (the first of two
checks; the OMS checks again just before sending). A refusal is not an error: the intent is stored REJECTED with
the limit and the values, so the caller, the audit log and the traces all see why.

This module is the face callers import from: :func:`submit_intent`, and the rules of
``execution.orders.intent_rules`` (legs, validation, transitions, the risk check). Intents are written by
``execution.orders.intent_batches``, one at a time or many at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from execution.models import TradeIntent
from execution.orders.intent_batches import IntentRequest, enqueue_oms, submit_requests
from execution.orders.intent_rules import (
    INCIDENT_LIMITS,
    ORDER_TYPES,
    TRANSITIONS,
    BatchPrices,
    IntentResult,
    LegSpec,
    decision_bar_closes,
    idempotency_lock_key,
    intent_transition,
    reference_price,
    reject,
    request_hash,
    risk_refusal,
    validated_request,
)

__all__ = [
    "INCIDENT_LIMITS",
    "ORDER_TYPES",
    "TRANSITIONS",
    "BatchPrices",
    "IntentResult",
    "LegSpec",
    "decision_bar_closes",
    "enqueue_oms",
    "idempotency_lock_key",
    "intent_transition",
    "reference_price",
    "reject",
    "request_hash",
    "risk_refusal",
    "submit_intent",
    "validated_request",
]


def submit_intent(
    *,
    bot,
    legs: Sequence[LegSpec],
    idempotency_key: str,
    source: str,
    bar_ts=None,
    actor=None,
    actor_name=None,
    failure_policy: str = TradeIntent.FailurePolicy.CANCEL_REMAINING,
    risk_checked: list[dict] | None = None,
) -> IntentResult:
    """Create the intent once per idempotency key (same key and body: the first intent again, ``created``
    False; other body: IDEMPOTENCY_KEY_REUSED), checked against risk: PENDING for the OMS, or REJECTED.

    ``risk_checked`` carries the checks the tick already ran on this very order (its first risk check, against the
    same limits and state); the intent then stores them instead of running them again. The OMS checks again before
    sending either way.

    Written by ``execution.orders.intent_batches.submit_requests``, the one write path of intents submitted one at
    a time or many at once (fewest round trips, the risk check before the insert: see its docstring)."""
    request = IntentRequest(
        bot=bot,
        legs=legs,
        idempotency_key=idempotency_key,
        bar_ts=bar_ts,
        failure_policy=failure_policy,
        risk_checked=risk_checked,
    )
    [result] = submit_requests([request], source=source, actor=actor, actor_name=actor_name, one=True)
    return result
