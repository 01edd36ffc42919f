"""Many intents submitted at once: the semantics of :func:`execution.orders.intents.submit_intent` for each, at a
fraction of the statements.

``submit_intent`` costs about fifteen statements an intent (advisory lock, lookup, inserts of the intent, its legs
and its audit row, two kill-switch reads, a bar and a risk-state query per leg, the risk checks' update). A caller
with many intents in hand (a batch API, the bench, a tick) submits them here in one transaction: the idempotency
locks are taken in one statement (in key order, so two batches never wait on each other in a cycle), existing keys
are read in one query, intents, legs and audit rows are multi-row inserts, the kill switches are read once, the
decision bars' prices in one query, and the risk state once for all the batch's bots in every instrument
and book (``execution.risk.state.risk_snapshots``).

Per intent, nothing changes: the same validation (a bad field fails the whole batch, named ``intents[i].field``,
and nothing is saved), the same idempotency (same key and body: the first intent again, ``created`` False; another
body: IDEMPOTENCY_KEY_REUSED for the whole batch, nothing saved; a key twice in one batch counts as a retry), the same
first risk check against the same state (a submission's check reads orders, not other intents, so the intents of a
batch do not see each other, as concurrent submissions do not), REJECTED with its incidents, or PENDING with its
checks for the OMS to check again before sending. An API batch asks for one (coalesced) OMS run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bots.selectors import trading_blocks
from controlplane import tenancy
from controlplane.books import book_for_venue
from controlplane.db.rows import insert_rows, update_rows
from controlplane.broker import publish_on_commit
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from controlplane.trace import current_trace_id
from execution.models import Instrument, IntentLeg, TradeIntent
from execution.orders.intents import (
    BatchPrices,
    IntentResult,
    LegSpec,
    enqueue_oms,
    idempotency_lock_key,
    reject,
    risk_refusal,
    validated_request,
)
from execution.risk.state import leg_scopes


@dataclass(frozen=True)
class IntentRequest:
    """One intent of a batch: what ``submit_intent`` takes per intent."""

    bot: object
    legs: Sequence[LegSpec]
    idempotency_key: str
    bar_ts: datetime | None = None
    failure_policy: str = TradeIntent.FailurePolicy.CANCEL_REMAINING


def submit_intents(
    requests: Sequence[IntentRequest], *, source: str, actor=None, actor_name: str | None = None
) -> list[IntentResult]:
    """Submit every request in one transaction; one result per request, in order (see the module docstring)."""
    if not requests:
        return []
    tenant_id = tenancy.require_tenant_id()
    label = actor_name or (actor.get_username() if actor is not None and actor.is_authenticated else "system")
    symbols = {leg.symbol for request in requests for leg in request.legs}
    instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
    validated = []
    for index, request in enumerate(requests):
        try:
            validated.append(
                validated_request(
                    bot=request.bot,
                    legs=request.legs,
                    idempotency_key=request.idempotency_key,
                    source=source,
                    bar_ts=request.bar_ts,
                    failure_policy=request.failure_policy,
                    instruments=instruments,
                )
            )
        except ControlPlaneError as error:
            raise ControlPlaneError(
                error.code, details={f"intents[{index}].{field}": v for field, v in (error.details or {}).items()}
            ) from error

    with transaction.atomic():
        keys = sorted({key for key, _, _ in validated})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) s",
                [sorted(idempotency_lock_key(tenant_id, key) for key in keys)],
            )
        existing = {i.idempotency_key: i for i in TradeIntent.objects.filter(idempotency_key__in=keys)}
        results: list[IntentResult | None] = []
        new: dict[str, tuple[int, TradeIntent]] = {}  # key -> (request index, unsaved intent)
        for index, ((key, _, body_hash), request) in enumerate(zip(validated, requests, strict=True)):
            earlier = existing.get(key) or (new[key][1] if key in new else None)
            if earlier is not None:
                if earlier.request_hash != body_hash:
                    raise ControlPlaneError(
                        ErrorCode.IDEMPOTENCY_KEY_REUSED,
                        details={"index": index, "idempotency_key": key, "intent_id": earlier.pk},
                    )
                results.append(IntentResult(earlier, False) if key in existing else None)
                continue
            new[key] = (
                index,
                TradeIntent(
                    tenant_id=tenant_id,
                    bot=request.bot,
                    idempotency_key=key,
                    request_hash=body_hash,
                    source=source,
                    bar_ts=request.bar_ts,
                    failure_policy=request.failure_policy,
                    created_by=label,
                    trace_id=current_trace_id(),
                    risk_checks=[],
                ),
            )
            results.append(None)
        created = insert_rows([intent for _, intent in new.values()])
        by_key = {intent.idempotency_key: intent for intent in created}
        for index, ((key, _, _), result) in enumerate(zip(validated, results, strict=True)):
            if result is None:
                results[index] = IntentResult(by_key[key], new[key][0] == index)

        clean_of = {key: clean for key, clean, _ in validated}
        legs_of: dict[int, list[IntentLeg]] = {}
        for intent in created:
            legs_of[intent.pk] = [
                IntentLeg(
                    tenant_id=tenant_id,
                    intent=intent,
                    leg_index=index,
                    venue=leg.venue,
                    instrument=instrument,
                    side=leg.side,
                    quantity=leg.quantity,
                    order_type=leg.order_type,
                    limit_price=leg.limit_price,
                    stop_price=leg.stop_price,
                )
                for index, (leg, instrument) in enumerate(clean_of[intent.idempotency_key])
            ]
        insert_rows([leg for legs in legs_of.values() for leg in legs])
        _audit_creations(created, clean_of, source=source, actor=actor, actor_name=actor_name, tenant_id=tenant_id)
        _first_risk_check(created, legs_of, label=label)
        if created and source == TradeIntent.Source.API and settings.OMS_ENQUEUE_ON_SUBMIT:
            publish_on_commit(lambda: enqueue_oms(tenant_id), what=f"OMS run of tenant {tenant_id}")
    return results


def _audit_creations(created, clean_of, *, source, actor, actor_name, tenant_id) -> None:
    """The ``intent.create`` rows ``audit_record`` writes one at a time, in one insert."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    trace_id = current_trace_id()
    insert_rows(
        [
            AuditEvent(
                tenant_id=tenant_id,
                actor_user=user,
                actor=actor_name or (user.get_username() if user else "system"),
                action="intent.create",
                resource_type="intent",
                resource_id=str(intent.pk),
                before_state=None,
                after_state={
                    "bot_id": intent.bot_id,
                    "source": source,
                    "idempotency_key": intent.idempotency_key,
                    "status": intent.status,
                    "legs": [
                        {
                            "venue": leg.venue,
                            "symbol": leg.symbol,
                            "side": leg.side,
                            "quantity": str(leg.quantity),
                            "order_type": leg.order_type,
                        }
                        for leg, _ in clean_of[intent.idempotency_key]
                    ],
                },
                trace_id=trace_id,
            )
            for intent in created
        ]
    )


def _first_risk_check(created: list[TradeIntent], legs_of: dict[int, list[IntentLeg]], *, label: str) -> None:
    """``risk_refusal`` of each new intent with the state read once for the batch; refusals are written at once
    (REJECTED, incidents), the others' checks in one update."""
    if not created:
        return
    at = timezone.now()
    bots = {intent.bot_id: intent.bot for intent in created}
    blocks = trading_blocks(list(bots.values()))
    # The risk state of every (instrument, book) the batch's unblocked legs go to, for all their bots at once.
    scopes = leg_scopes(
        [(intent.bot, leg) for intent in created if blocks[intent.bot_id] is None for leg in legs_of[intent.pk]], at=at
    )
    price_of = BatchPrices(
        (leg.instrument_id, leg.order_type, intent.bar_ts)
        for intent in created
        if blocks[intent.bot_id] is None
        for leg in legs_of[intent.pk]
    )

    def scopes_of(bot, leg, instrument):
        return scopes[instrument.id, str(book_for_venue(leg.venue))][bot.id]

    checked = []
    for intent in created:
        refusal, checks, _ = risk_refusal(
            bot=intent.bot,
            legs=[(leg, leg.instrument) for leg in legs_of[intent.pk]],
            bar_ts=intent.bar_ts,
            at=at,
            block=blocks[intent.bot_id],
            price_of=price_of,
            scopes_of=scopes_of,
        )
        if refusal is not None:
            reject(intent, refusal, checks, actor_name=label)
            continue
        intent.risk_checks, intent.updated_at = checks, timezone.now()
        checked.append(intent)
    update_rows(checked, ["risk_checks", "updated_at"])
