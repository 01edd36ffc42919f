"""Recording what the venues said to a batch the OMS sent (``execution.orders.oms``): acknowledgements in one
statement, uncertain sends left for the recovery sweep, failed legs handed to their intent's failure policy
(``execution.orders.leg_risk``). Split from the OMS module, which had grown past its size."""

from __future__ import annotations

import copy
from collections import defaultdict

from django.utils import timezone

from controlplane import tenancy
from controlplane.db.rows import update_rows_sql
from execution.models import Order, TradeIntent
from execution.orders.intent_moves import move_audited_ctes
from execution.orders.leg_risk import leg_failed
from execution.orders.sending import SendOutcome, apply_ack, left_for_recovery
from execution.orders.writer import oms_write, oms_writes

Status = TradeIntent.Status

# _record_outcomes' lock of the acknowledged orders, order by order on the primary key in id order, keeping those
# still SUBMITTING (see ``execution.orders.oms._SENDABLE_ORDERS_SQL`` for why not the ORM's filter). MATERIALIZED: the locks are taken in id
# order before the update (below) writes the rows, whatever order its join visits them in.
_STILL_SUBMITTING_CTE = f"""
locked AS MATERIALIZED (
    SELECT o.id FROM unnest(%s::bigint[]) AS k(id) CROSS JOIN LATERAL (
        SELECT id, status FROM {Order._meta.db_table} o WHERE o.id = k.id AND o.tenant_id = %s OFFSET 0 FOR UPDATE
    ) o
     WHERE o.status = %s
)"""

_ACK_FIELDS = ["venue_order_id", "status", "reason", "updated_at"]


def record_outcomes(outcomes: list[SendOutcome]) -> None:
    """Acknowledgements in one transaction (orders, then the intents all of whose legs were acknowledged move to
    WORKING); uncertain sends are left for recovery; each intent with a failed leg gets its failure policy."""
    by_intent: dict[int, list[SendOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_intent[outcome.order.intent_id].append(outcome)
    acked = [o for o in outcomes if o.ack is not None]
    failed_by_intent: dict[int, list[SendOutcome]] = {}
    working = []
    for intent_id, sent in by_intent.items():
        failures = [o for o in sent if o.rejected or (o.error is not None and not o.uncertain)]
        if failures:
            failed_by_intent[intent_id] = failures
        elif all(o.ack is not None for o in sent):
            working.append(intent_id)
    if acked or working:
        _write_acks(acked, working)
    for outcome in outcomes:
        if outcome.uncertain:  # its intent stays ACCEPTED until the sweep resolves it
            left_for_recovery(outcome.order, outcome.error)
    for intent_id, failures in failed_by_intent.items():
        first, *others = failures
        for other in others:  # failed too; the policy is applied once, for the first failed leg
            _mark_failed(other.order, *_failure(other))
        leg_failed(intent_id, first.order, *_failure(first))


def _write_acks(acked: list[SendOutcome], working: list[int]) -> None:
    """The acknowledged orders still SUBMITTING get the venue's answer (venue id, status, reason, time), and the
    ``working`` intents still ACCEPTED move to WORKING with their audit rows, in one statement: the orders are
    locked in id order and those a cancel got to between the send and now are left alone (``locked``), then
    written in one update (``update_rows_sql``: what ``bulk_update`` writes, without the CASE expression per row
    and field it builds in Python); the intents' move (a cancelled intent is not moved) and its audit rows are
    ``move_audited_ctes``. It was three statements (the lock, the orders' update, the move): each round trip
    costs milliseconds of scheduling under load, on the path of every intent's latency. Its transaction, when it is
    its own, is sent in one round trip (``execution.orders.writer.oms_write``). The orders in memory get the answer
    only where it was written."""
    tenant_id = tenancy.require_tenant_id()
    ctes, params, selects = [], [], []
    answers = {}
    if acked:
        for outcome in acked:
            answer = copy.copy(outcome.order)
            apply_ack(answer, outcome.ack)
            answers[answer.pk] = (outcome.order, answer)
        update, update_params = update_rows_sql([answer for _, answer in answers.values()], _ACK_FIELDS)
        ctes += [_STILL_SUBMITTING_CTE, f'acked AS ({update} AND t."id" IN (SELECT id FROM locked) RETURNING t."id")']
        params += [sorted(answers), tenant_id, Order.Status.SUBMITTING, *update_params]
        selects.append("SELECT 'order', id FROM acked")
    if working:
        moves, move_params = move_audited_ctes(
            "UPDATE execution_tradeintent AS t SET status = %s, updated_at = %s WHERE t.tenant_id = %s "
            'AND t.id = ANY(%s) AND t.status = %s RETURNING t."id"',
            [Status.WORKING, timezone.now(), tenant_id, working, Status.ACCEPTED],
            before=Status.ACCEPTED,
            after=Status.WORKING,
        )
        ctes.append(moves)
        params += move_params
        selects.append("SELECT 'intent', resource_id::bigint FROM audit")
    rows = oms_write(f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}", params)
    written = {pk for kind, pk in rows if kind == "order"}
    for pk in written:
        order, answer = answers[pk]
        for name in _ACK_FIELDS:
            setattr(order, name, getattr(answer, name))


def _failure(outcome: SendOutcome) -> tuple[str, str]:
    if outcome.rejected:
        return "VENUE_REJECTED", outcome.ack.reason or "rejected by the venue"
    return str(outcome.error.code), str(outcome.error)


def _mark_failed(order: Order, error_code: str, message: str) -> None:
    with oms_writes():
        Order.objects.filter(pk=order.pk, status__in=Order.OPEN_STATUSES).update(
            status=Order.Status.FAILED, error_code=error_code, reason=message[:2000], updated_at=timezone.now()
        )
