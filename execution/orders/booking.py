"""Booking a fill: the fill row, the bot's position in the fill's book, the venue inventory, the day's profit
variables and the intent's status, in one OMS transaction, so our books move only with what a venue reported.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection

from controlplane import tenancy
from controlplane.books import book_for_venue
from controlplane.trace import current_trace_id
from execution.models import Fill, Order, StrategyPosition, TradeIntent, VenueInventory
from execution.orders.intents import intent_transition
from execution.orders.writer import ACTOR, oms_writes
from execution.risk.pnl import PositionState
from traces.models import ProfitVariables

Status = TradeIntent.Status


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
        quote_asset = _paper_cash_asset(order.venue, instrument)
        if quote_asset:  # a paper twin's cash moves with its fills (a live venue's cash is the venue's balance)
            _add_inventory(order.venue, quote_asset, -sign * quantity * price * instrument.multiplier - known_fee)
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


def _paper_cash_asset(venue: str, instrument) -> str:
    """The quote currency a fill at a quote-filled sim venue (``sim-kraken``) pays or receives, or "" elsewhere."""
    quoted_venue = settings.SIM_VENUE_FILL_MODELS.get(venue, {}).get("quotes")
    return ((instrument.venue_symbols or {}).get(quoted_venue) or {}).get("quote", "") if quoted_venue else ""


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
