"""The OMS: the only writer of orders and fills (DESIGN.md invariant 1).

Every write to ``Order`` and ``Fill`` happens inside :func:`oms_writes`, which declares the transaction the OMS's
by calling ``app_oms_write_begin()``, a SECURITY DEFINER function that records the transaction id in a table the
runtime role cannot read or write; a database trigger refuses the write otherwise (``set_config('app.writer', ...)``
is no longer trusted: the runtime role could set it itself).

Sending is at-most-once: an order is recorded SUBMITTING and committed before the venue call, so a crash leaves a
row to look up by client order id rather than a blind re-send; ``resolve_unacknowledged_orders`` (beat, and at
worker start) does that lookup and records what the venue says.

Multi-leg policy: legs are sent in order. When a leg fails (venue error or rejection), the legs not yet sent are
never sent (CANCELLED), the other legs' open orders are cancelled, and with ``FLATTEN`` whatever already filled is
closed with a market order; the intent becomes FAILED and ``status_detail`` names the failed leg, its error, the
policy and each action taken.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import CancelRequest
from controlplane import tenancy
from controlplane.books import book_for_venue, is_sim_venue
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.services import audit_record
from controlplane.trace import current_trace_id
from controlplane.selectors import all_tenant_ids
from execution.intents import intent_transition, reject, risk_refusal
from execution.live_exit import account_for_live_exit
from execution.models import Fill, IntentLeg, Order, StrategyPosition, TradeIntent, VenueInventory
from execution.pnl import PositionState
from execution.venues.routing import adapter_for
from integrations.venues.base import VenueError, VenueOrderAck, VenueOrderRequest, VenueOrderStatus
from traces.models import ProfitVariables

logger = logging.getLogger(__name__)
Status = TradeIntent.Status
ACTOR = "oms"


_writing = contextvars.ContextVar("oms_writing", default=False)


@contextlib.contextmanager
def oms_writes() -> Iterator[None]:
    """A transaction (or savepoint) in which the trigger lets orders and fills be written; reset on the way out so
    an enclosing transaction is not left marked as the OMS. Nested inside another one it only adds the savepoint:
    the outer block already marked the transaction and will reset it."""
    with transaction.atomic():
        if _writing.get():
            yield
            return
        token = _writing.set(True)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT app_oms_write_begin()")
            yield
            with connection.cursor() as cursor:
                cursor.execute("SELECT app_oms_write_end()")
        finally:
            _writing.reset(token)


def client_order_id(leg: IntentLeg, purpose: str = Order.Purpose.LEG) -> str:
    """Stable per intent leg: a retried send carries the same id, so the venue (and a lookup) sees one order."""
    suffix = "" if purpose == Order.Purpose.LEG else "-flat"
    return f"cp-{leg.intent_id}-{leg.leg_index}{suffix}"


# --- Claim, re-check, send ----------------------------------------------------------------------------------


def process_pending_intents(*, limit: int = 500) -> int:
    """Claim up to ``limit`` PENDING intents of the current tenant (SKIP LOCKED, so workers never share one),
    re-check kill state and risk, and send the accepted ones. Returns how many intents were claimed."""
    tenancy.require_tenant_id()
    claimed = 0
    while claimed < limit:
        with oms_writes():
            intent = (
                TradeIntent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=Status.PENDING)
                .select_related("bot")
                .order_by("id")
                .first()
            )
            if intent is None:
                break
            claimed += 1
            accepted = _accept_or_reject(intent)
        if accepted:
            _send(intent.pk)
    return claimed


def _accept_or_reject(intent: TradeIntent) -> bool:
    """The second risk check, just before sending; accepted intents get their orders recorded SUBMITTING."""
    legs = list(intent.legs.select_related("instrument").order_by("leg_index"))
    refusal, checks, prices = risk_refusal(
        bot=intent.bot, legs=[(leg, leg.instrument) for leg in legs], bar_ts=intent.bar_ts, at=timezone.now()
    )
    if refusal is not None:
        refusal = {**refusal, "checked_by": "oms"}
        reject(intent, refusal, checks, actor_name=ACTOR)
        return False
    intent.risk_checks = list(intent.risk_checks or []) + [{**c, "checked_by": "oms"} for c in checks]
    intent.save(update_fields=["risk_checks", "updated_at"])
    Order.objects.bulk_create([_order_for(intent, leg, prices[index]) for index, leg in enumerate(legs)])
    intent_transition(intent, Status.ACCEPTED, actor_name=ACTOR)
    return True


def _order_for(
    intent: TradeIntent,
    leg: IntentLeg,
    reference_price: Decimal | None,
    purpose: str = Order.Purpose.LEG,
    side: str | None = None,
    quantity: Decimal | None = None,
) -> Order:
    flatten = purpose == Order.Purpose.FLATTEN
    return Order(
        tenant_id=intent.tenant_id,
        intent=intent,
        leg=leg,
        purpose=purpose,
        bot_id=intent.bot_id,
        venue=leg.venue,
        instrument_id=leg.instrument_id,
        client_order_id=client_order_id(leg, purpose),
        side=side or leg.side,
        quantity=quantity or leg.quantity,
        order_type="market" if flatten else leg.order_type,
        limit_price=None if flatten else leg.limit_price,
        stop_price=None if flatten else leg.stop_price,
        reference_price=reference_price,
        not_before=intent.bar_ts or timezone.now(),
        bot_stage=intent.bot.stage,
        trace_id=current_trace_id(),
    )


def _request(order: Order) -> VenueOrderRequest:
    return VenueOrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.instrument.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        bot_id=order.bot_id,
        reference_price=order.reference_price,
        venue_market=(order.instrument.venue_symbols or {}).get(order.venue),
    )


def _place(order: Order) -> VenueOrderAck:
    """One send; after an uncertain failure, look the order up instead of sending again. If the lookup cannot say
    (not there yet, or the venue does not answer), the uncertain error stands: the order may still arrive."""
    adapter = adapter_for(order.venue, bot_id=order.bot_id)
    try:
        return adapter.place_order(_request(order))
    except VenueError as error:
        if not error.uncertain:
            raise
        try:
            found = adapter.lookup_order(client_order_id=order.client_order_id)
        except VenueError:
            found = None
        if found is None:
            raise
        return found


def _left_for_recovery(order: Order, error: VenueError) -> None:
    """An uncertain send stays SUBMITTING (neither failed nor re-sent) until the recovery sweep finds it at the
    venue or proves it absent; the clock for that starts now."""
    with oms_writes():
        Order.objects.filter(pk=order.pk, status=Order.Status.SUBMITTING, venue_order_id="").update(
            error_code=str(error.code),
            updated_at=timezone.now(),
            reason=f"uncertain: {error}"[:2000] + " (left for the recovery sweep; never re-sent)",
        )


def _record_ack(order: Order, ack: VenueOrderAck) -> None:
    order.venue_order_id = ack.venue_order_id
    order.status = {
        VenueOrderStatus.REJECTED: Order.Status.REJECTED,
        VenueOrderStatus.CANCELLED: Order.Status.CANCELLED,
    }.get(ack.status, Order.Status.WORKING)
    order.reason = ack.reason
    order.save(update_fields=["venue_order_id", "status", "reason", "updated_at"])


def _send(intent_id: int) -> None:
    """Send the intent's legs in order, each recorded before and after its venue call."""
    orders = list(
        Order.objects.filter(intent_id=intent_id, purpose=Order.Purpose.LEG, status=Order.Status.SUBMITTING)
        .select_related("instrument", "leg")
        .order_by("leg__leg_index")
    )
    for order in orders:
        with transaction.atomic():  # reads the intent under its lock; writes no order, so no writer mark
            intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
            if intent.status != Status.ACCEPTED:  # cancelled meanwhile: send nothing more
                return
        try:
            ack = _place(order)
        except VenueError as error:
            if error.uncertain:
                _left_for_recovery(order, error)  # later legs wait: the intent stays ACCEPTED until resolved
                return
            _leg_failed(intent_id, order, str(error.code), str(error))
            return
        with oms_writes():
            _record_ack(order, ack)
        if ack.status == VenueOrderStatus.REJECTED:
            _leg_failed(intent_id, order, "VENUE_REJECTED", ack.reason or "rejected by the venue")
            return
    with transaction.atomic():  # the intent's status only: orders are not written here
        intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
        if intent.status == Status.ACCEPTED:
            intent_transition(intent, Status.WORKING, actor_name=ACTOR)


def _leg_failed(intent_id: int, failed: Order, error_code: str, message: str) -> None:
    """Apply the intent's multi-leg failure policy and say so in its status."""
    with oms_writes():
        intent = TradeIntent.objects.select_for_update().select_related("bot").get(pk=intent_id)
        failed = Order.objects.select_for_update().get(pk=failed.pk)
        if failed.status in Order.OPEN_STATUSES:
            failed.status = Order.Status.FAILED
        failed.error_code, failed.reason = error_code, message[:2000]
        failed.save(update_fields=["status", "error_code", "reason", "updated_at"])
        actions = []
        for other in (
            Order.objects.select_for_update()
            .filter(intent=intent, purpose=Order.Purpose.LEG)
            .exclude(pk=failed.pk)
            .select_related("instrument", "leg")
            .order_by("leg__leg_index")
        ):
            if other.status == Order.Status.SUBMITTING:
                _mark_cancelled(other, "never sent: another leg failed")
                actions.append({"leg": other.leg.leg_index, "action": "not_sent"})
            elif other.status in Order.OPEN_STATUSES:
                actions.append({"leg": other.leg.leg_index, "action": "cancelled", **_cancel_at_venue(other)})
    flatten = []
    if intent.failure_policy == TradeIntent.FailurePolicy.FLATTEN:
        flatten = _flatten_filled_legs(intent)
    with oms_writes():
        intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
        detail = {
            "failed_leg": failed.leg.leg_index,
            "error_code": error_code,
            "message": message,
            "policy": intent.failure_policy,
            "actions": actions + flatten,
        }
        if intent.status in (Status.ACCEPTED, Status.WORKING, Status.PARTIALLY_FILLED):
            intent_transition(intent, Status.FAILED, actor_name=ACTOR, detail=detail)


def _flatten_filled_legs(intent: TradeIntent) -> list[dict]:
    """Close what the other legs filled with market orders in the opposite direction."""
    actions = []
    filled = list(
        Order.objects.filter(intent=intent, purpose=Order.Purpose.LEG, filled_quantity__gt=0).select_related(
            "leg", "instrument"
        )
    )
    for order in filled:
        with oms_writes():
            flat = _order_for(
                intent,
                order.leg,
                order.average_price,
                purpose=Order.Purpose.FLATTEN,
                side="sell" if order.side == "buy" else "buy",
                quantity=order.filled_quantity,
            )
            flat.save()
        try:
            ack = _place(Order.objects.select_related("instrument").get(pk=flat.pk))
        except VenueError as error:
            with oms_writes():
                Order.objects.filter(pk=flat.pk).update(
                    status=Order.Status.FAILED, error_code=str(error.code), reason=str(error)
                )
            actions.append({"leg": order.leg.leg_index, "action": "flatten_failed", "error_code": str(error.code)})
            continue
        with oms_writes():
            _record_ack(flat, ack)
        actions.append(
            {
                "leg": order.leg.leg_index,
                "action": "flatten_sent",
                "order": flat.client_order_id,
                "quantity": str(order.filled_quantity),
            }
        )
    return actions


# --- Recovery: orders whose send was never recorded ------------------------------------------------------


def resolve_unacknowledged_orders(*, older_than: timedelta | None = None, limit: int = 100) -> dict:
    """Resolve the current tenant's orders left SUBMITTING without a venue order id (the process died, or timed
    out, between the send and the record). Each is looked up at its venue, never sent again:

    - found: the venue's id and status are recorded, with its fills (and their fees), and the intent moves on;
      a venue rejection applies the intent's failure policy;
    - proven absent (the lookup answered and it is not there): FAILED ``NOT_FOUND_AT_VENUE``, the failure
      policy applies;
    - the lookup itself fails (venue unreachable, ambiguous match): left SUBMITTING for the next sweep.

    Only orders older than ``older_than`` (``OMS_UNACKNOWLEDGED_AFTER_SECONDS``, longer than a send may take) are
    touched, so a send still in flight is never judged. Row locks (SKIP LOCKED) keep two sweeps apart."""
    age = older_than if older_than is not None else timedelta(seconds=settings.OMS_UNACKNOWLEDGED_AFTER_SECONDS)
    candidates = list(
        Order.objects.filter(status=Order.Status.SUBMITTING, venue_order_id="", updated_at__lte=timezone.now() - age)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    outcome = {"found": [], "not_found": [], "unresolved": []}
    for order_id in candidates:
        failure, ack = None, None
        with oms_writes():  # the lock keeps other sweeps off this order while its venue is asked
            order = (
                Order.objects.select_for_update(skip_locked=True)
                .filter(pk=order_id, status=Order.Status.SUBMITTING, venue_order_id="")
                .select_related("instrument", "leg")
                .first()
            )
            if order is None:
                continue  # resolved meanwhile, or another sweep holds it
            adapter = adapter_for(order.venue, bot_id=order.bot_id)
            try:
                ack = adapter.lookup_order(client_order_id=order.client_order_id)
            except VenueError as error:
                outcome["unresolved"].append(
                    {"order": order.client_order_id, "error_code": str(error.code), "message": str(error)}
                )
                continue
            if ack is None:
                outcome["not_found"].append(order.client_order_id)
                failure = (
                    "NOT_FOUND_AT_VENUE",
                    f"{order.venue} has no order {order.client_order_id}: the send never arrived.",
                )
                order.status = Order.Status.FAILED
                order.save(update_fields=["status", "updated_at"])
            else:
                _record_ack(order, ack)
                audit_record(
                    action="order.recovered",
                    resource_type="order",
                    resource_id=order.id,
                    actor_name=ACTOR,
                    before={"status": Order.Status.SUBMITTING},
                    after={"status": order.status, "venue_order_id": order.venue_order_id},
                )
                outcome["found"].append(order.client_order_id)
                if ack.status == VenueOrderStatus.REJECTED:
                    failure = ("VENUE_REJECTED", ack.reason or "rejected by the venue")
                else:
                    intent = TradeIntent.objects.select_for_update().get(pk=order.intent_id)
                    unsent = Order.objects.filter(
                        intent_id=intent.pk, purpose=Order.Purpose.LEG, status=Order.Status.SUBMITTING
                    ).exists()
                    if intent.status == Status.ACCEPTED and not unsent:
                        intent_transition(intent, Status.WORKING, actor_name=ACTOR, detail={"recovered": True})
        # Venue calls that follow (the failure policy's cancels or flattening, fills) run after the commit, each
        # recorded in its own OMS transaction as in a normal send.
        if failure is not None:
            _leg_failed(order.intent_id, order, *failure)
        elif ack.filled_quantity > 0:
            _record_venue_fills(adapter, [order], since=order.created_at - FILL_LOOKBACK)
    return outcome


# A venue's clock and ours differ; fills are fetched from a little before the order was recorded.
FILL_LOOKBACK = timedelta(minutes=5)


def _record_venue_fills(adapter, orders: list[Order], *, since: datetime) -> int:
    """Record the venue's fills of ``orders`` (matched by venue or client order id); known fills change nothing."""
    by_venue_id = {o.venue_order_id: o for o in orders if o.venue_order_id}
    by_client_id = {o.client_order_id: o for o in orders}
    recorded = 0
    for fill in adapter.fills_since(since):
        order = by_venue_id.get(fill.venue_order_id) or by_client_id.get(fill.client_order_id)
        if order is None:
            continue
        if (
            record_fill(
                order=order,
                venue_fill_id=fill.venue_fill_id,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                reference_price=order.reference_price,
                ts=fill.ts,
            )
            is not None
        ):
            recorded += 1
    return recorded


def sync_live_fills() -> dict:
    """Record the fills of the current tenant's open, acknowledged orders at live venues (one fills call per
    venue). A venue that cannot answer is reported and tried again on the next sweep."""
    open_orders = list(
        Order.objects.filter(status__in=(Order.Status.WORKING, Order.Status.PARTIALLY_FILLED))
        .exclude(venue_order_id="")
        .select_related("instrument")
    )
    by_venue: dict[str, list[Order]] = {}
    for order in open_orders:
        if not is_sim_venue(order.venue):
            by_venue.setdefault(order.venue, []).append(order)
    result: dict = {"recorded": 0, "failures": []}
    for venue, orders in sorted(by_venue.items()):
        try:
            result["recorded"] += _record_venue_fills(
                adapter_for(venue, bot_id=orders[0].bot_id),
                orders,
                since=min(o.created_at for o in orders) - FILL_LOOKBACK,
            )
        except VenueError as error:
            result["failures"].append({"venue": venue, "error_code": str(error.code), "message": str(error)})
    return result


# --- Fills -------------------------------------------------------------------------------------------------


def record_fill(
    *,
    order: Order,
    venue_fill_id: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal | None,
    slippage: Decimal = Decimal(0),
    reference_price: Decimal | None = None,
    ts: datetime,
) -> Fill | None:
    """Record one execution: the fill, the order, the bot's position, the venue inventory, the day's profit
    variables and the intent's status, in one OMS transaction. A fill id already recorded changes nothing.
    Position, inventory and profit variables are those of the fill's book (its venue's): a sim fill never moves
    the live book.

    ``fee`` None means the venue did not report it: the fill keeps it null (unknown), and the sums (order,
    position, day) add only the fees that are known."""
    known_fee = fee if fee is not None else Decimal(0)
    with oms_writes():
        order = Order.objects.select_for_update().select_related("instrument", "intent").get(pk=order.pk)
        if Fill.objects.filter(order=order, venue_fill_id=venue_fill_id).exists():
            return None
        instrument = order.instrument
        sign = 1 if order.side == "buy" else -1
        position = _locked_position(order)
        before = PositionState(position.quantity, position.average_price, position.realized_pnl, position.fees)
        after = before.apply_fill(
            side_sign=sign, quantity=quantity, price=price, fee=known_fee, multiplier=instrument.multiplier
        )
        realized = after.realized_pnl - before.realized_pnl
        fill = Fill.objects.create(
            order=order,
            bot_id=order.bot_id,
            venue=order.venue,
            instrument=instrument,
            venue_fill_id=venue_fill_id,
            side=order.side,
            quantity=quantity,
            price=price,
            reference_price=reference_price,
            fee=fee,
            slippage=slippage,
            realized_pnl=realized,
            bot_stage=order.bot_stage,
            ts=ts,
            trace_id=current_trace_id(),
        )
        total = order.filled_quantity + quantity
        order.average_price = ((order.average_price or Decimal(0)) * order.filled_quantity + price * quantity) / total
        order.filled_quantity = total
        order.fees += known_fee
        order.slippage += slippage
        if order.status in Order.OPEN_STATUSES:
            order.status = Order.Status.FILLED if total >= order.quantity else Order.Status.PARTIALLY_FILLED
        order.save(update_fields=["average_price", "filled_quantity", "fees", "slippage", "status", "updated_at"])
        position.quantity, position.average_price = after.quantity, after.average_price
        position.realized_pnl, position.fees = after.realized_pnl, after.fees
        position.save(update_fields=["quantity", "average_price", "realized_pnl", "fees", "updated_at"])
        _add_inventory(order.venue, instrument.symbol, sign * quantity)
        _add_profit_variables(order, fill, before, after)
        _refresh_intent_status(order.intent_id)
    return fill


def _locked_position(order: Order) -> StrategyPosition:
    book = book_for_venue(order.venue)
    StrategyPosition.objects.bulk_create(
        [
            StrategyPosition(
                tenant_id=order.tenant_id, bot_id=order.bot_id, instrument_id=order.instrument_id, book=book
            )
        ],
        ignore_conflicts=True,
    )
    return StrategyPosition.objects.select_for_update().get(
        bot_id=order.bot_id, instrument_id=order.instrument_id, book=book
    )


_ADD_INVENTORY_SQL = f"""
INSERT INTO {VenueInventory._meta.db_table} AS inventory (tenant_id, book, venue, asset, quantity, updated_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT ON CONSTRAINT inventory_one_per_asset
DO UPDATE SET quantity = inventory.quantity + EXCLUDED.quantity, updated_at = now()
"""


def _add_inventory(venue: str, asset: str, delta: Decimal) -> None:
    """One upsert: the row is locked and added to in place, whoever created it."""
    with connection.cursor() as cursor:
        cursor.execute(_ADD_INVENTORY_SQL, [tenancy.require_tenant_id(), book_for_venue(venue), venue, asset, delta])


def _add_profit_variables(order: Order, fill: Fill, before: PositionState, after: PositionState) -> None:
    day, book = fill.ts.date(), book_for_venue(order.venue)
    ProfitVariables.objects.bulk_create(
        [ProfitVariables(tenant_id=order.tenant_id, bot_id=order.bot_id, day=day, book=book)], ignore_conflicts=True
    )
    row = ProfitVariables.objects.select_for_update().get(bot_id=order.bot_id, day=day, book=book)
    multiplier = order.instrument.multiplier
    closed = before.quantity != 0 and (before.quantity > 0) != (fill.side == "buy")
    row.pnl += fill.realized_pnl
    row.fees += fill.fee or 0
    row.slippage += fill.slippage
    row.turnover += fill.quantity * fill.price * multiplier
    row.exposure = max(row.exposure, abs(after.quantity) * fill.price * multiplier)
    row.fills += 1
    if closed:
        row.closing_trades += 1
        row.winning_trades += 1 if fill.realized_pnl > 0 else 0
    row.save()


def _refresh_intent_status(intent_id: int) -> None:
    intent = TradeIntent.objects.select_for_update().get(pk=intent_id)
    if intent.status not in (Status.WORKING, Status.PARTIALLY_FILLED):
        return
    legs = list(
        Order.objects.filter(intent_id=intent_id, purpose=Order.Purpose.LEG).values_list("status", "filled_quantity")
    )
    if all(status == Order.Status.FILLED for status, _ in legs):
        intent_transition(intent, Status.FILLED, actor_name=ACTOR)
    elif any(filled > 0 for _, filled in legs):
        intent_transition(intent, Status.PARTIALLY_FILLED, actor_name=ACTOR)


# --- Cancels -----------------------------------------------------------------------------------------------


def _mark_cancelled(order: Order, reason: str) -> None:
    order.status, order.cancelled_at, order.reason = Order.Status.CANCELLED, timezone.now(), reason
    order.save(update_fields=["status", "cancelled_at", "reason", "updated_at"])


def _cancel_at_venue(order: Order) -> dict:
    """Cancel one open order (caller holds its lock inside oms_writes). SUBMITTING orders were never acknowledged:
    they are cancelled by client order id too, in case the send did reach the venue."""
    try:
        adapter_for(order.venue, bot_id=order.bot_id).cancel_order(
            client_order_id=order.client_order_id, venue_order_id=order.venue_order_id or None
        )
    except VenueError as error:
        return {
            "order": order.client_order_id,
            "cancelled": False,
            "error_code": str(error.code),
            "message": str(error),
        }
    _mark_cancelled(order, "cancelled")
    return {"order": order.client_order_id, "cancelled": True}


def _cancel_open(intents_filter: Q, orders_filter: Q, *, reason: str, actor=None, actor_name: str = ACTOR) -> dict:
    """Cancel open orders and open intents matching the filters (current tenant)."""
    results = {"orders_cancelled": 0, "intents_cancelled": 0, "failures": []}
    with oms_writes():
        for order in Order.objects.select_for_update().filter(orders_filter, status__in=Order.OPEN_STATUSES):
            outcome = _cancel_at_venue(order)
            if outcome["cancelled"]:
                results["orders_cancelled"] += 1
            else:
                results["failures"].append(outcome)
        for intent in TradeIntent.objects.select_for_update().filter(
            intents_filter, status__in=TradeIntent.OPEN_STATUSES
        ):
            if Order.objects.filter(intent=intent, status__in=Order.OPEN_STATUSES).exists():
                continue  # an order could not be cancelled: the intent stays open, and the failure is reported
            intent_transition(intent, Status.CANCELLED, actor=actor, actor_name=actor_name, detail={"reason": reason})
            results["intents_cancelled"] += 1
    return results


def cancel_intent(*, intent_id: int, actor=None, actor_name: str | None = None) -> TradeIntent:
    """Cancel an open intent and its open orders; a finished intent cannot be cancelled (ILLEGAL_TRANSITION)."""
    with transaction.atomic():
        intent = TradeIntent.objects.select_for_update().filter(pk=intent_id).first()
        if intent is None:
            raise ControlPlaneError(ErrorCode.NOT_FOUND, f"No intent {intent_id} in this tenant.")
        if intent.status not in TradeIntent.OPEN_STATUSES:
            raise ControlPlaneError(
                ErrorCode.ILLEGAL_TRANSITION,
                f"Intent {intent_id} is {intent.status} and cannot be cancelled.",
                details={"current": intent.status, "requested": Status.CANCELLED},
            )
        result = _cancel_open(
            Q(pk=intent_id), Q(intent_id=intent_id), reason="cancelled on request", actor=actor, actor_name=actor_name
        )
        if result["failures"]:
            raise ControlPlaneError(
                ErrorCode.SERVICE_UNAVAILABLE, "The venue did not cancel every order.", details=result
            )
        intent.refresh_from_db()
    return intent


def process_cancel_request(*, cancel_request_id: int) -> dict:
    """Carry out a kill's cancel request: cancel the bot's, the tenant's or (global) every tenant's open orders
    and intents, then mark the request DONE or FAILED with the result. Running it twice changes nothing. A bot
    leaving LIVE (purpose ``leave_live``) then has what its venue still holds recorded in the same transaction
    (execution.live_exit)."""
    with tenancy.tenant_context(tenancy.current_tenant_id()), transaction.atomic():
        request = CancelRequest.unscoped.filter(pk=cancel_request_id).first()
        if request is None or request.status != CancelRequest.Status.PENDING:
            return {}
        scope, tenant_id, bot_id, reason = request.scope, request.tenant_id, request.bot_id, request.reason
        leaving_live = request.purpose == CancelRequest.Purpose.LEAVE_LIVE
    tenant_ids = [tenant_id] if scope != CancelRequest.Scope.GLOBAL else all_tenant_ids()
    result: dict = {"orders_cancelled": 0, "intents_cancelled": 0, "failures": []}
    for tid in tenant_ids:
        with tenancy.tenant_context(tid):
            scoped = Q(bot_id=bot_id) if scope == CancelRequest.Scope.BOT else Q()
            try:
                part = _cancel_open(
                    scoped,
                    scoped,
                    reason=reason if leaving_live else f"kill ({scope.lower()}): {reason}",
                    actor_name="leave_live" if leaving_live else f"kill:{scope.lower()}",
                )
            except Exception as error:  # report, never swallow: the request is FAILED with the reason
                logger.exception("cancel request failed", extra={"cancel_request_id": cancel_request_id})
                part = {
                    "orders_cancelled": 0,
                    "intents_cancelled": 0,
                    "failures": [{"tenant_id": tid, "message": str(error)}],
                }
            for key in ("orders_cancelled", "intents_cancelled"):
                result[key] += part[key]
            result["failures"] += part["failures"]
    status = CancelRequest.Status.FAILED if result["failures"] else CancelRequest.Status.DONE
    with tenancy.tenant_context(tenant_id), transaction.atomic():
        updated = CancelRequest.unscoped.filter(pk=cancel_request_id, status=CancelRequest.Status.PENDING).update(
            status=status, processed_at=timezone.now(), result=result
        )
        if updated:
            audit_record(
                action="cancel_request.process",
                resource_type="cancel_request",
                resource_id=cancel_request_id,
                actor_name=ACTOR,
                tenant_id=tenant_id,
                before={"status": CancelRequest.Status.PENDING},
                after={"status": status, **result},
            )
            if leaving_live:  # only the run that marked it processed: one exit report, one incident
                account_for_live_exit(cancel_request=request, cancel_result=result)
    return result


def cancel_hook(*, cancel_request_id: int, scope: str, tenant_id: int | None, bot_id: int | None) -> None:
    """The declared hook ``bots.kill.cancel_orders`` (settings.CONTROLPLANE_HOOKS): a committed kill cancels orders
    through the OMS right away."""
    with tenancy.tenant_context(tenant_id):
        process_cancel_request(cancel_request_id=cancel_request_id)


def process_pending_cancel_requests() -> int:
    """Sweep for cancel requests of the current tenant (and global ones) still PENDING: hooks that failed."""
    ids = list(CancelRequest.unscoped.filter(status=CancelRequest.Status.PENDING).values_list("id", flat=True))
    for cancel_id in ids:
        process_cancel_request(cancel_request_id=cancel_id)
    return len(ids)


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
    from execution.intents import LegSpec, request_hash

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
        _order_for(intent, leg, reference_price).save()
    return intent


def send_reconcile_flatten(*, intent_ids: list[int]) -> list[dict]:
    """Send recorded flatten intents through the normal send path (at most once: an uncertain send is left for the
    recovery sweep) and say what became of each order."""
    for intent_id in intent_ids:
        _send(intent_id)
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
