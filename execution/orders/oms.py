"""The OMS: claims pending intents in batches, checks them once more against the risk limits, and sends their legs.

Only the OMS writes orders and fills (``execution.orders.writer.oms_writes``; booking a fill is
``execution.orders.booking``, cancels ``execution.orders.cancels``, recovery ``execution.orders.recovery``).

A batch is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` (``OMS_BATCH_SIZE`` intents), so workers racing on
the same pending set never share an intent; the batch's risk re-checks, orders (SUBMITTING), risk-check notes and
audit rows are written in one transaction. Each intent is re-checked in turn within it, after the orders of the
intents before it were inserted, so a batch sees the same risk state (recent orders, rate limits) as one intent at
a time would.

Sending is at-most-once: the orders are committed SUBMITTING before any venue call, so a crash leaves rows to
look up by client order id rather than a blind re-send; ``resolve_unacknowledged_orders`` (beat, and at worker
start) does that lookup and records what the venue says. The batch's legs are then sent concurrently
(``execution.orders.sending.place_all``), outside any transaction, and the venues' answers recorded in one more
transaction (``execution.orders.acknowledgements``: one statement for the orders, the intents and their
audit rows).

Multi-leg policy (``execution.orders.leg_risk``): when a leg fails (venue error or rejection), the intent's other
legs are cancelled at their venues and, with ``FLATTEN``, whatever already filled is closed with a market order;
the intent becomes FAILED, ``status_detail`` names the failed leg, its error, the policy and each action, and an
alert is raised. A leg whose send is uncertain stays SUBMITTING for the recovery sweep, and its intent ACCEPTED.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from bots.selectors import trading_blocks
from controlplane import tenancy
from controlplane.books import book_for_venue, is_sim_venue
from controlplane.db.one_trip import in_one_round_trip
from controlplane.db.rows import insert_rows_sql, update_rows_sql
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from execution.models import IntentLeg, Order, TradeIntent, TradingControl
from execution.orders.acknowledgements import record_outcomes
from execution.orders.intents import BatchPrices, intent_transition, reject, risk_refusal
from execution.orders.intent_moves import move_audited_ctes
from execution.orders.leg_risk import leg_failed
from execution.orders.sending import (  # noqa: F401 (client_order_id and record_ack are the OMS's public names)
    client_order_id,
    order_for,
    place_all,
    record_ack,
)
from execution.orders.writer import ACTOR, MARK, oms_writes
from execution.risk.checks import RecentOrder, RiskScope, Side
from execution.risk.state import counts_tenant_orders, leg_risk_state

logger = logging.getLogger(__name__)
Status = TradeIntent.Status

__all__ = [
    "client_order_id",
    "leg_failed",
    "process_pending_intents",
    "record_ack",
    "record_reconcile_flatten",
    "send_reconcile_flatten",
]


# --- Claim, re-check, send ----------------------------------------------------------------------------------


def process_pending_intents(
    *, limit: int = 500, batch_size: int | None = None, on_full_batch: Callable[[], None] | None = None
) -> int:
    """Claim up to ``limit`` PENDING intents of the current tenant, ``batch_size`` (``OMS_BATCH_SIZE``) at a time
    (SKIP LOCKED, so workers never share one), re-check kill state and risk, and send the accepted ones' legs
    concurrently. Returns how many intents were claimed.

    ``on_full_batch`` is called when a claim came back full (more may be waiting), once the batch is checked and
    committed and before it is sent: the OMS task asks for another run there, so an idle worker claims the next
    batch meanwhile instead of it waiting for this one's sends. Batches whose checks could count each other's
    orders are checked one after the other (:func:`_serialize_checks`).

    A claim that came back short (fewer than it asked for) ends the run once its batch is sent: claiming again
    found nothing but after the rare race below, and cost every run a transaction (about six round trips) that
    held the worker. Nothing is stranded by stopping (``execution.orders.oms_runs``: the argument in full): the
    short claim saw every PENDING intent committed before it that no other claim held; one committed after it
    asks for a run itself (the OMS task cleared its run request before its first claim); one another worker's
    claim held is that worker's, or is claimed again by it if its transaction rolls back to re-check under the
    tenant's lock; one left PENDING by a claim whose transaction failed is found by beat's PENDING sweep."""
    tenant_id = tenancy.require_tenant_id()
    size = batch_size or settings.OMS_BATCH_SIZE
    claimed = 0
    whole_tenant = None  # decided per batch from the tenant's limits (guessed before its locks)
    while claimed < limit:
        wanted = min(size, limit - claimed)
        try:
            with oms_writes(marked_by_first_statement=True):  # the claim marks it when it claims anything
                intents = list(
                    TradeIntent.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(status=Status.PENDING)
                    .select_related("bot")
                    .annotate(oms_mark=RawSQL(MARK, ()))
                    .order_by("id")[:wanted]
                )
                if not intents:
                    break
                accepted, orders = _accept_or_reject_batch(intents, tenant_id=tenant_id, whole_tenant=whole_tenant)
        except _TenantLockNeeded:
            whole_tenant = True  # the tenant's limits began to count orders meanwhile: the batch again, whole-tenant
            continue
        claimed += len(intents)
        whole_tenant = None
        if on_full_batch is not None and len(intents) == size:
            on_full_batch()
        if accepted:
            _send_intents(accepted, orders=orders)
        if len(intents) < wanted:
            break  # a short claim: nothing else was claimable then, and what commits later asks for its own run
    return claimed


class _TenantLockNeeded(Exception):
    """A batch checked under its bots' locks found that the tenant's limits now count orders across its bots: its
    transaction is rolled back (claim included) and it is claimed and checked again under the tenant's lock."""


def _check_lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _serialize_checks(tenant_id: int, bot_ids: list[int], *, whole_tenant: bool) -> None:
    """Wait for every other batch whose checks could count this batch's orders, or this batch theirs, to commit
    (locks held to the end of this transaction).

    A batch's risk re-check counts the orders of the batches committed before it and of the intents before it in
    the batch: each bot's own (its rate limit, duplicate window) and, when the tenant's limits count them
    (``execution.risk.state.COUNTING_LIMITS``), every bot's of the tenant. Two batches checked at once would not see
    each other's orders and could together pass a limit each passes alone. So a batch takes its bots' locks (in
    id order) under the tenant's lock held shared, and when the tenant's limits count orders across bots
    (``whole_tenant``) the tenant's lock alone, exclusive: batches of other bots are checked in parallel unless the
    tenant counts, and a whole-tenant batch waits for every batch in flight. Positions and PnL move with fills, not
    with other batches' orders. Only the checks and the orders' insert wait: claims skip each other's rows, and
    sends and acknowledgements run in parallel."""
    tenant_key = _check_lock_key(f"oms-checks:{tenant_id}")
    with connection.cursor() as cursor:
        if whole_tenant:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [tenant_key])
            return
        cursor.execute(
            _BOT_CHECK_LOCKS_SQL,
            [tenant_key, [_check_lock_key(f"oms-checks:{tenant_id}:{bot_id}") for bot_id in sorted(set(bot_ids))]],
        )


# The tenant's lock (shared), then the bots' locks in key order, in one statement (it was two, a round trip on the
# path of every intent's latency). The order is the executor's, not the planner's choice: the sort in the subquery
# reads every row of its join, so the tenant's lock (the materialized ``tenant`` row, read by that join) is taken
# before the sort returns its first key, and the bots' locks are taken as the outer aggregate reads the keys in
# order. Taking a bot's lock first could deadlock behind a whole-tenant batch waiting for the tenant's lock.
_BOT_CHECK_LOCKS_SQL = """
WITH tenant AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%s))
SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM tenant, unnest(%s::bigint[]) AS k ORDER BY k) AS s
"""


def _tenant_counts_orders(tenant_id: int) -> bool:
    """Whether the current tenant's limits count orders across its bots, as a guess made before the check locks:
    what this process's last batch of the tenant found under them (:data:`_counted_last`), else read now.

    Only a guess: the check reads the limits again under the locks, and a batch that took its bots' locks when the
    tenant counts orders starts over under the tenant's lock (``_TenantLockNeeded``); one that took the tenant's lock
    when it no longer counts is only checked alone. Reading it before every batch cost a round trip on the path of
    every intent's latency, to find what the last batch found (a tenant's limits rarely change)."""
    counted = _counted_last.get(tenant_id)
    if counted is not None:
        return counted
    limits = TradingControl.objects.filter(bot__isnull=True).values_list("risk_limits", flat=True).first()
    return counts_tenant_orders(limits)


class _LeastRecentlyUsed(OrderedDict):
    """A dict of at most ``size`` entries: the entry set last is the newest, and setting one past the size drops the
    oldest (a long-lived worker that serves many tenants keeps the guesses of those it served lately, not all)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


# Tenant id -> whether its limits counted orders across its bots when this process last checked a batch of it
# under the check locks (the guess of _tenant_counts_orders; set by every batch, so the oldest is the tenant served
# least lately). Per process: a forked worker starts with its own. A dropped tenant's next batch reads its limits.
_counted_last: _LeastRecentlyUsed = _LeastRecentlyUsed(4096)


def _accept_or_reject_batch(
    intents: list[TradeIntent], *, tenant_id: int, whole_tenant: bool | None = None
) -> tuple[list[int], list[Order]]:
    """The second risk check of each claimed intent, in the caller's transaction; returns the accepted ids and
    their orders (inserted, with their legs and instruments attached, for :func:`_send_intents`).

    What no other batch changes is read before the check locks (:func:`_serialize_checks`): the claimed intents'
    legs and their decision bars' prices; whether the tenant's limits count orders across bots (which locks are
    needed) is guessed (:func:`_tenant_counts_orders`), read again under them, and the batch starts over under the
    tenant's lock if the guess was wrong.
    Everything another batch's commit can change (kill switches, recent orders, positions, PnL) is read after them.

    The risk inputs are read once for the batch (:class:`BatchRiskState`: kill switches, reference prices, the
    risk state of every instrument and book for all the batch's bots), and each intent is checked in turn against
    that state plus the orders of the intents accepted before it in the batch, as it would be one at a time (rate
    limits and duplicate windows count them). The orders (SUBMITTING), ACCEPTED transitions and audit rows are
    then written in one insert each; a refusal is written at once (REJECTED, incidents)."""
    legs_by_intent: dict[int, list[IntentLeg]] = defaultdict(list)
    for leg in (
        IntentLeg.objects.filter(intent_id__in=[i.pk for i in intents])
        .select_related("instrument")
        .order_by("intent_id", "leg_index")
    ):
        legs_by_intent[leg.intent_id].append(leg)
    price_of = BatchPrices(
        (leg.instrument_id, leg.order_type, intent.bar_ts) for intent in intents for leg in legs_by_intent[intent.pk]
    )
    if whole_tenant is None:
        whole_tenant = _tenant_counts_orders(tenant_id)
    _serialize_checks(tenant_id, [intent.bot_id for intent in intents], whole_tenant=whole_tenant)
    state = BatchRiskState(intents, legs_by_intent, price_of)
    _counted_last[tenant_id] = tenant_id in state.counting_tenants
    if not whole_tenant and tenant_id in state.counting_tenants:
        raise _TenantLockNeeded
    accepted, orders = [], []
    for intent in intents:
        legs = legs_by_intent[intent.pk]
        refusal, checks, prices = risk_refusal(
            bot=intent.bot,
            legs=[(leg, leg.instrument) for leg in legs],
            bar_ts=intent.bar_ts,
            at=state.at,
            block=state.blocks[intent.bot_id],
            price_of=state.price_of,
            scopes_of=state.scopes_of,
        )
        if refusal is not None:
            reject(intent, {**refusal, "checked_by": "oms"}, checks, actor_name=ACTOR)
            continue
        intent.risk_checks = list(intent.risk_checks or []) + [{**c, "checked_by": "oms"} for c in checks]
        new_orders = [order_for(intent, leg, prices[index]) for index, leg in enumerate(legs)]
        for order, leg in zip(new_orders, legs, strict=True):
            order.instrument = leg.instrument  # read with the legs: the send needs its symbol
        state.add_orders(intent, new_orders)  # the next intents' checks count them
        orders.extend(new_orders)
        accepted.append(intent)
    if accepted:
        _insert_accepted(orders, accepted, unflushed=len(accepted) == len(intents) and _sim_only(orders))
    return [intent.pk for intent in accepted], orders


def _sim_only(orders: list[Order]) -> bool:
    """Whether the claim's commit may skip its WAL flush: the batch's every order goes to a sim venue, and the
    transaction is the claim's own (one atomic block: the claim's; inside a caller's transaction the setting would
    spare the caller's commit its flush).

    The flush makes the orders SUBMITTING durable before any venue call, so that a crash cannot leave an order at a
    venue that the database forgot (the intent PENDING again, and sent again). A sim venue's send has no effect
    outside this database: ``SimVenue.place_orders`` writes nothing and keeps nothing (its book is our orders, which
    the record of its answers writes, with a flushed commit that makes this one durable too, the WAL being one
    sequence). A crash that loses the unflushed claim loses it whole (WAL is replayed in order): the intents are
    PENDING again, with no orders and nothing at the venue, and are claimed and sent once, as if for the first
    time. Only a batch that rejected nothing: a rejection may raise an incident another process acts on. Its
    commit is still durable before anything it did is acted on outside the database; what it saves is a disk sync
    (milliseconds, queued behind every other commit of the cluster) on the path of every paper intent's "sent"
    time. A batch with a live venue's order keeps its flush."""
    return len(connection.atomic_blocks) == 1 and all(is_sim_venue(order.venue) for order in orders)


def _insert_accepted(orders: list[Order], accepted: list[TradeIntent], *, unflushed: bool = False) -> None:
    """The accepted intents' orders (SUBMITTING; their ids set) and the intents' move to ACCEPTED with its audit
    rows, in one statement (``WITH placed AS (INSERT ...), moved AS (UPDATE ...), audit AS (INSERT ...)``): they were
    two, each a round trip on the path of every intent's latency. The orders' ids come back with their client
    order ids (unique per leg), so no row order is relied on. ``unflushed``: the transaction's commit does not wait
    for the WAL flush (:func:`_sim_only` says when that is safe), set in the same statement."""
    now = timezone.now()
    for intent in accepted:
        intent.status, intent.updated_at = Status.ACCEPTED, now
    update, update_params = update_rows_sql(accepted, ["risk_checks", "status", "updated_at"])
    moves, move_params = move_audited_ctes(
        update + ' RETURNING t."id"', update_params, before=Status.PENDING, after=Status.ACCEPTED
    )
    insert, insert_params = insert_rows_sql(orders)
    unflushed = (
        ", unflushed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))" if unflushed else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f'WITH placed AS ({insert} RETURNING "id", "client_order_id"), {moves}{unflushed} SELECT id, client_order_id '
            f"FROM placed{', unflushed' if unflushed else ''}",
            [*insert_params, *move_params],
        )
        ids = {client_order_id: pk for pk, client_order_id in cursor.fetchall()}
    for order in orders:
        order.pk = ids[order.client_order_id]
        order._state.adding, order._state.db = False, connection.alias


class BatchRiskState:
    """What the OMS's risk re-check reads, read once for a claimed batch, and the batch's own orders so far.

    Reading per intent cost about six statements an intent (two kill switches, a bar, the risk state, per leg);
    here it is one for both kill switches (``bots.selectors.kill_switches``), one for the decision bars' prices
    (read by the caller before the tenant's check lock) and one for the risk state of all
    the batch's bots in every instrument and book its legs go to (``execution.risk.state.risk_snapshots``: the
    tenant's recent orders are read once, not once per instrument).
    The batch is one transaction and checked at one instant (``at``); the orders of intents accepted earlier in
    the batch are added to the scopes they belong to (the bot's in their book, the tenant's per book) exactly as
    the risk-state query would have returned them had they been inserted first."""

    def __init__(
        self, intents: list[TradeIntent], legs_by_intent: dict[int, list[IntentLeg]], price_of: BatchPrices
    ) -> None:
        self.at = timezone.now()
        bots = {intent.bot_id: intent.bot for intent in intents}
        self.blocks = trading_blocks(list(bots.values()))
        self._scopes, self.counting_tenants = leg_risk_state(
            [(intent.bot, leg) for intent in intents for leg in legs_by_intent[intent.pk]], at=self.at
        )
        self.price_of = price_of  # the decision bars' closes, read before the lock (bars do not change)
        self._by_bot: dict[tuple[int, str], list[RecentOrder]] = defaultdict(list)
        self._by_tenant: dict[tuple[int, str], list[RecentOrder]] = defaultdict(list)

    def scopes_of(self, bot, leg, instrument):
        book = str(book_for_venue(leg.venue))
        bot_scope, tenant_scope = self._scopes[instrument.id, book][bot.id]
        return [
            _with_orders(bot_scope, self._by_bot.get((bot.id, book), ())),
            _with_orders(tenant_scope, self._by_tenant.get((bot.tenant_id, book), ())),
        ]

    def add_orders(self, intent: TradeIntent, orders: list[Order]) -> None:
        for order in orders:
            book = str(book_for_venue(order.venue))
            # As the risk-state query reads an order: its limit price, else its reference price, else 0.
            price = next((p for p in (order.limit_price, order.reference_price) if p is not None), Decimal(0))
            recent = RecentOrder(order.leg.instrument.symbol, Side(order.side), order.quantity, price, self.at)
            self._by_bot[intent.bot_id, book].append(recent)
            self._by_tenant[intent.tenant_id, book].append(recent)


def _with_orders(scope: RiskScope, orders) -> RiskScope:
    if not orders:
        return scope
    return replace(scope, state=replace(scope.state, recent_orders=scope.state.recent_orders + tuple(orders)))


def _send_intents(intent_ids: list[int], *, orders: list[Order] | None = None) -> None:
    """Send the SUBMITTING legs of the intents still ACCEPTED, all at once, and record what the venues said.

    The intents are locked for a moment first (in the statement that reads their orders), so a cancel that got
    there before us is seen (nothing of a cancelled intent is sent); the sends then run outside any transaction.
    ``orders``: the intents' orders as the OMS just inserted them, in intent and leg order; only the ids of those
    still to send are read then, not the rows (their legs, instruments) again.

    That transaction writes nothing but its row locks, so its commit need not wait for the WAL flush (``unflushed``
    in :data:`_SENDABLE_ORDERS_SQL`): a flush is one disk sync, queued behind every other commit of the cluster, on
    the path of every intent's "sent" time, and a crash can lose nothing of it that matters (the locks die with the
    server; the orders it reads were committed SUBMITTING, durably, before). Only when this transaction is its own:
    inside a caller's, the setting would outlive it and spare the caller's commit its flush. Its own transaction is
    sent whole, in one round trip (``controlplane.db.one_trip``; BEGIN, the context, the statement and COMMIT were
    four)."""
    own_transaction = not connection.in_atomic_block
    if orders is not None and own_transaction:  # the whole transaction in one round trip (it was four)
        still = {pk for (pk,) in in_one_round_trip(_SENDABLE_ORDERS_SQL, _sendable_params(intent_ids, unflushed=True))}
        orders = [order for order in orders if order.pk in still]
        if orders:
            record_outcomes(place_all(orders))
        return
    with transaction.atomic():  # reads the intents under their locks; writes no order, so no writer mark
        sendable = TradeIntent.objects.select_for_update().filter(pk__in=intent_ids, status=Status.ACCEPTED)
        to_send = Order.objects.filter(
            intent_id__in=sendable.values("pk"), purpose=Order.Purpose.LEG, status=Order.Status.SUBMITTING
        )
        if orders is None:
            orders = list(to_send.select_related("instrument", "leg").order_by("intent_id", "leg__leg_index"))
        else:
            with connection.cursor() as cursor:
                cursor.execute(_SENDABLE_ORDERS_SQL, _sendable_params(intent_ids, unflushed=own_transaction))
                still = {pk for (pk,) in cursor.fetchall()}
            orders = [order for order in orders if order.pk in still]
    if orders:
        record_outcomes(place_all(orders))


def _sendable_params(intent_ids: list[int], *, unflushed: bool) -> dict:
    return {
        "intents": sorted(intent_ids),
        "tenant": tenancy.require_tenant_id(),
        "accepted": Status.ACCEPTED,
        "leg": Order.Purpose.LEG,
        "submitting": Order.Status.SUBMITTING,
        "unflushed": unflushed,
    }


# What _send_intents' ORM query asks (the intents still ACCEPTED, locked, and their SUBMITTING leg orders), row by row
# on the primary key and the intent index (lateral scans kept apart by OFFSET 0; the statuses are compared outside
# them, so no status index can stand in): with the statistics of a tenant that grew since the last ANALYZE, the
# planner read every order of the tenant through its index and the status index (every order ever SUBMITTING, until
# a vacuum) instead, for each batch. The batch's intents are locked in id order, whatever their status now.
# ``unflushed``: the transaction's commit does not wait for the WAL flush when it is _send_intents' own (its setting
# lasts until that commit; otherwise it sets synchronous_commit to what it is), as the tick's batch summary does.
_SENDABLE_ORDERS_SQL = f"""
WITH unflushed AS MATERIALIZED (
    SELECT set_config(
        'synchronous_commit', CASE WHEN %(unflushed)s THEN 'off' ELSE current_setting('synchronous_commit') END, true
    )
), sendable AS (
    SELECT t.id FROM unflushed, unnest(%(intents)s::bigint[]) AS k(id) CROSS JOIN LATERAL (
        SELECT id, status FROM {TradeIntent._meta.db_table} t
         WHERE t.id = k.id AND t.tenant_id = %(tenant)s OFFSET 0 FOR UPDATE
    ) t
     WHERE t.status = %(accepted)s
)
SELECT o.id FROM sendable s CROSS JOIN LATERAL (
    SELECT id, purpose, status FROM {Order._meta.db_table} o WHERE o.intent_id = s.id AND o.tenant_id = %(tenant)s
    OFFSET 0
) o
 WHERE o.purpose = %(leg)s AND o.status = %(submitting)s
"""

# --- Operator flatten (reconcile resolution) ---------------------------------------------------------------


def record_reconcile_flatten(
    *,
    bot,
    venue: str,
    instrument,
    quantity: Decimal,
    reference_price: Decimal | None,
    idempotency_key: str,
    actor_name: str,
    detail: dict,
) -> TradeIntent:
    """Record an operator's flatten of one instrument: a ``reconcile`` intent, ACCEPTED, with one market leg of the
    opposite side of the venue's signed ``quantity`` and its order SUBMITTING, for :func:`send_reconcile_flatten`
    to send once the caller commits. It skips the risk limits and the reconcile-mismatch block on purpose (it only
    closes what the venue holds, as ``_flatten_filled_legs`` does); the caller checks the kill switches first.
    The key (one per report and instrument) is unique per tenant, so the same flatten cannot be recorded twice."""
    from execution.orders.intents import LegSpec, request_hash

    side, size = ("sell" if quantity > 0 else "buy"), abs(quantity)
    spec = LegSpec(venue=venue, symbol=instrument.symbol, side=side, quantity=size, order_type="market")
    with oms_writes():
        intent = TradeIntent.objects.create(
            bot=bot,
            idempotency_key=idempotency_key,
            source=TradeIntent.Source.RECONCILE,
            request_hash=request_hash(
                bot_id=bot.id, legs=[spec], bar_ts=None, failure_policy=TradeIntent.FailurePolicy.CANCEL_REMAINING
            ),
            created_by=actor_name,
            trace_id=current_trace_id(),
        )
        leg = IntentLeg.objects.create(
            intent=intent,
            leg_index=0,
            venue=venue,
            instrument=instrument,
            side=side,
            quantity=size,
            order_type="market",
        )
        audit_record(
            action="intent.create",
            resource_type="intent",
            resource_id=intent.pk,
            actor_name=actor_name,
            after={
                "bot_id": bot.id,
                "source": intent.source,
                "idempotency_key": idempotency_key,
                "status": intent.status,
                "legs": [
                    {
                        "venue": venue,
                        "symbol": instrument.symbol,
                        "side": side,
                        "quantity": str(size),
                        "order_type": "market",
                    }
                ],
            },
        )
        intent_transition(intent, Status.ACCEPTED, actor_name=actor_name, detail=detail)
        order_for(intent, leg, reference_price).save()
    return intent


def send_reconcile_flatten(*, intent_ids: list[int]) -> list[dict]:
    """Send recorded flatten intents through the normal send path (at most once: an uncertain send is left for the
    recovery sweep) and say what became of each order."""
    _send_intents(list(intent_ids))
    return [
        {
            "instrument": order.instrument.symbol,
            "order": order.client_order_id,
            "side": order.side,
            "quantity": str(order.quantity),
            "status": order.status,
            "venue_order_id": order.venue_order_id,
            "error_code": order.error_code,
        }
        for order in Order.objects.filter(intent_id__in=intent_ids).select_related("instrument").order_by("id")
    ]
