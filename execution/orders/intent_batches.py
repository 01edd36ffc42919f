"""Submitting intents: the one write path of :func:`execution.orders.intents.submit_intent` (one intent) and of
:func:`submit_intents` (many at once), at a fraction of the statements of a naive submission.

Written one statement at a time, a submission cost about fifteen statements an intent (the instruments read in a
transaction of its own, advisory lock, lookup, inserts of the intent, its legs and its audit row, two kill-switch
reads, a bar and a risk-state query per leg, the risk checks' update). Here, in one transaction whatever the
number of intents: the instruments are read in it, the idempotency locks are taken in one statement (in key order,
so two batches never wait on each other in a cycle), existing keys are read in one query, the kill switches once,
the decision bars' prices in one query, and the risk state once for all the new intents' bots in every instrument
and book (``execution.risk.state.leg_scopes``); intents, legs and audit rows are then one multi-row insert.

The first risk check runs before the insert, in the same transaction and against the same state: a submission's
check reads orders, kill switches and bars, never intents, so an intent's own row cannot change its outcome. The
intent is then written with its checks (no update after it), in one statement with its legs and its audit row (the
intents' ids are taken from their sequence just before): between an intent's insert and its commit there is
nothing else, so the row is visible to the OMS as soon after it is written as it can be (issue 18's "intent ->
order sent" starts at the insert). A refused intent is inserted PENDING, then moved to REJECTED with its
incidents, as before.

Per intent, nothing changes: the same validation (a bad field fails the whole batch, named ``intents[i].field``, or
``field`` for one intent, and nothing is saved), the same idempotency (same key and body: the first intent again,
``created`` False; another body: IDEMPOTENCY_KEY_REUSED, nothing saved; a key twice in one batch counts as a retry;
the key's lock is taken before the lookup, so a concurrent submission of the key waits and then finds the first),
the same first risk check (the intents of a batch do not see each other, as concurrent submissions do not),
REJECTED with its incidents, or PENDING with its checks for the OMS to check again before sending. An API
submission that leaves an intent PENDING asks for one (coalesced) OMS run.
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
from controlplane.broker import publish_on_commit
from controlplane.db.rows import allocate_ids, insert_rows_sql
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from controlplane.trace import current_trace_id
from execution.models import Instrument, IntentLeg, TradeIntent
from execution.orders.intent_rules import (
    BatchPrices,
    IntentResult,
    LegSpec,
    idempotency_lock_key,
    reject,
    risk_refusal,
    validated_request,
)
from execution.orders.oms_runs import request_oms_run
from execution.risk.state import leg_scopes


@dataclass(frozen=True)
class IntentRequest:
    """One intent of a batch: what ``submit_intent`` takes per intent. ``risk_checked``: the checks the caller
    already ran on this very order (the tick's first check), stored instead of running them again."""

    bot: object
    legs: Sequence[LegSpec]
    idempotency_key: str
    bar_ts: datetime | None = None
    failure_policy: str = TradeIntent.FailurePolicy.CANCEL_REMAINING
    risk_checked: list[dict] | None = None


def submit_intents(
    requests: Sequence[IntentRequest], *, source: str, actor=None, actor_name: str | None = None
) -> list[IntentResult]:
    """Submit every request in one transaction; one result per request, in order (see the module docstring)."""
    return submit_requests(requests, source=source, actor=actor, actor_name=actor_name)


def submit_requests(
    requests: Sequence[IntentRequest], *, source: str, actor=None, actor_name: str | None = None, one: bool = False
) -> list[IntentResult]:
    """:func:`submit_intents`; ``one``: the request is ``submit_intent``'s, whose errors name its fields without
    an ``intents[i].`` prefix and no index."""
    if not requests:
        return []
    tenant_id = tenancy.require_tenant_id()
    label = actor_name or (actor.get_username() if actor is not None and actor.is_authenticated else "system")
    with transaction.atomic():
        # Read in the submission's transaction: on its own it was a transaction of its own (four round trips).
        symbols = {leg.symbol for request in requests for leg in request.legs}
        instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)} if symbols else {}
        validated = [_validated(index, request, source, instruments, one) for index, request in enumerate(requests)]

        # One submission per key at a time: the others wait here, then find the first one's intent.
        keys = sorted({key for key, _, _ in validated})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) s",
                [sorted(idempotency_lock_key(tenant_id, key) for key in keys)],
            )
        existing = {i.idempotency_key: i for i in TradeIntent.objects.filter(idempotency_key__in=keys)}
        results: list[IntentResult | None] = []
        new: dict[str, tuple[int, TradeIntent, list[IntentLeg]]] = {}  # key -> (request index, intent, legs)
        for index, ((key, clean, body_hash), request) in enumerate(zip(validated, requests, strict=True)):
            earlier = existing.get(key) or (new[key][1] if key in new else None)
            if earlier is not None:
                if earlier.request_hash != body_hash:
                    details = {"idempotency_key": key, "intent_id": earlier.pk}
                    raise ControlPlaneError(
                        ErrorCode.IDEMPOTENCY_KEY_REUSED, details=details if one else {"index": index, **details}
                    )
                results.append(IntentResult(earlier, False) if key in existing else None)
                continue
            intent = TradeIntent(
                tenant_id=tenant_id,
                bot_id=request.bot.id,  # a Bot, or the tick's own record of one (execution.tick)
                idempotency_key=key,
                request_hash=body_hash,
                source=source,
                bar_ts=request.bar_ts,
                failure_policy=request.failure_policy,
                created_by=label,
                trace_id=current_trace_id(),
                risk_checks=request.risk_checked or [],
            )
            legs = [
                IntentLeg(
                    tenant_id=tenant_id,
                    intent=intent,
                    leg_index=leg_index,
                    venue=leg.venue,
                    instrument=instrument,
                    side=leg.side,
                    quantity=leg.quantity,
                    order_type=leg.order_type,
                    limit_price=leg.limit_price,
                    stop_price=leg.stop_price,
                )
                for leg_index, (leg, instrument) in enumerate(clean)
            ]
            new[key] = (index, intent, legs)
            results.append(None)

        # The first risk check, before the intents are written (see the module docstring).
        to_check = [
            (requests[index].bot, intent, legs)
            for index, intent, legs in new.values()
            if requests[index].risk_checked is None
        ]
        refusals = _first_risk_check(to_check)

        created = _write(list(new.values()), source=source, actor=actor, actor_name=actor_name, tenant_id=tenant_id)
        for index, ((key, _, _), result) in enumerate(zip(validated, results, strict=True)):
            if result is None:
                results[index] = IntentResult(new[key][1], new[key][0] == index)
        for intent in created:
            if intent.idempotency_key in refusals:
                refusal, checks = refusals[intent.idempotency_key]
                reject(intent, refusal, checks, actor_name=label)
        pending = len(created) > len(refusals)
        if pending and source == TradeIntent.Source.API and settings.OMS_ENQUEUE_ON_SUBMIT:
            publish_on_commit(lambda: enqueue_oms(tenant_id), what=f"OMS run of tenant {tenant_id}")
    return results


def _validated(index: int, request: IntentRequest, source: str, instruments: dict, one: bool):
    try:
        return validated_request(
            bot=request.bot,
            legs=request.legs,
            idempotency_key=request.idempotency_key,
            source=source,
            bar_ts=request.bar_ts,
            failure_policy=request.failure_policy,
            instruments=instruments,
        )
    except ControlPlaneError as error:
        if one:
            raise
        raise ControlPlaneError(
            error.code, details={f"intents[{index}].{field}": v for field, v in (error.details or {}).items()}
        ) from error


def _write(new, *, source, actor, actor_name, tenant_id) -> list[TradeIntent]:
    """The new intents, their legs and their ``intent.create`` audit rows (what ``audit_record`` writes one at a
    time) in one statement: the intents' ids are taken from their sequence first, so the legs and the audit rows
    can name them in the same insert. Returns the intents, their ids set."""
    if not new:
        return []
    intents = [intent for _, intent, _ in new]
    for intent, pk in zip(intents, allocate_ids(TradeIntent, len(intents)), strict=True):
        intent.pk = pk
    parts = [insert_rows_sql(intents), insert_rows_sql([leg for _, _, legs in new for leg in legs])]
    parts.append(
        insert_rows_sql(_audit_creations(new, source=source, actor=actor, actor_name=actor_name, tenant_id=tenant_id))
    )
    (intents_sql, intents_params), (legs_sql, legs_params), (audit_sql, audit_params) = parts
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH intents AS ({intents_sql}), legs AS ({legs_sql}) {audit_sql}",
            [*intents_params, *legs_params, *audit_params],
        )
    for intent in intents:
        intent._state.adding, intent._state.db = False, connection.alias
    return intents


def _audit_creations(new, *, source, actor, actor_name, tenant_id) -> list[AuditEvent]:
    """The ``intent.create`` rows ``audit_record`` writes one at a time (unsaved)."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    trace_id = current_trace_id()
    return [
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
                        "symbol": leg.instrument.symbol,
                        "side": leg.side,
                        "quantity": str(leg.quantity),
                        "order_type": leg.order_type,
                    }
                    for leg in legs
                ],
            },
            trace_id=trace_id,
        )
        for _, intent, legs in new
    ]


def _first_risk_check(
    to_check: list[tuple[object, TradeIntent, list[IntentLeg]]],
) -> dict[str, tuple[dict, list[dict]]]:
    """``risk_refusal`` of each intent (not yet written) with the state read once for all of them: the passed ones
    get their checks on the intent; the refusals are returned by key, with their checks, for the caller to write
    once the intents are (REJECTED, incidents)."""
    if not to_check:
        return {}
    at = timezone.now()
    bots = {bot.id: bot for bot, _, _ in to_check}
    blocks = trading_blocks(list(bots.values()))
    open_legs = [(bot, intent, leg) for bot, intent, legs in to_check if blocks[bot.id] is None for leg in legs]
    # The risk state of every (instrument, book) the unblocked legs go to, for all their bots at once.
    scopes = leg_scopes([(bot, leg) for bot, _, leg in open_legs], at=at) if open_legs else {}
    price_of = BatchPrices((leg.instrument_id, leg.order_type, intent.bar_ts) for _, intent, leg in open_legs)

    def scopes_of(bot, leg, instrument):
        return scopes[instrument.id, str(book_for_venue(leg.venue))][bot.id]

    refusals = {}
    for bot, intent, legs in to_check:
        refusal, checks, _ = risk_refusal(
            bot=bot,
            legs=[(leg, leg.instrument) for leg in legs],
            bar_ts=intent.bar_ts,
            at=at,
            block=blocks[bot.id],
            price_of=price_of,
            scopes_of=scopes_of,
        )
        if refusal is not None:
            refusals[intent.idempotency_key] = (refusal, checks)
        else:
            intent.risk_checks = checks
    return refusals


def enqueue_oms(tenant_id: int) -> None:
    """Best effort (publish_on_commit): with the broker down the intent stays PENDING for the next OMS run or the
    PENDING sweep. Coalesced (``execution.orders.oms_runs``): a burst of submissions queues one run, not one each."""
    request_oms_run(tenant_id)
