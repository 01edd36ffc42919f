"""Booking a fill: the fill row, the bot's position in the fill's book, the venue inventory, the day's profit
variables and the intent's status, in one OMS transaction, so our books move only with what a venue reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from controlplane import tenancy
from controlplane.books import book_for_venue
from controlplane.db.rows import insert_rows, update_rows
from controlplane.trace import current_trace_id
from execution.models import Fill, Order, StrategyPosition, TradeIntent, VenueInventory
from execution.orders.intent_moves import move_audited
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
        order = (
            Order.objects.select_for_update(of=("self", "intent"))
            .select_related("instrument", "intent")
            .get(pk=order.pk)
        )
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


@dataclass(frozen=True)
class FillReport:
    """One execution a venue reported for one of our orders (the arguments of :func:`record_fill`)."""

    order: Order
    venue_fill_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal | None
    ts: datetime
    slippage: Decimal = Decimal(0)
    reference_price: Decimal | None = None


def record_fills(reports: list[FillReport], *, locked: bool = False, also_write: Sequence[str] = ()) -> int:
    """Record many executions at once, each exactly as :func:`record_fill` would, in one OMS transaction with
    multi-row writes: the orders are locked in one statement, fills inserted in one, and the orders, positions,
    profit variables and intents updated in one statement each (``controlplane.db.rows.update_rows``, not
    ``bulk_update``, whose CASE per row and field cost more than the rest of the booking); inventory: one upsert per
    venue and asset.
    Reports are applied in the order given, so two fills of one position compose as they would one at a time.
    Fill ids already recorded change nothing. Returns the number of fills recorded.

    ``locked``: the reports' orders are rows the caller read in its own OMS transaction under their lock
    (``select_for_update``), with their instrument; they are not read again (the sim venue's matching reads and
    locks them itself). ``also_write``: more fields of those orders to write with the booking's own update (the
    sim venue's ``last_matched_bar_ts``), for every order of the reports."""
    if not reports:
        return 0
    with oms_writes(savepoint=False):  # all or nothing with the caller's block; nothing here catches an error
        if locked:
            orders = {r.order.pk: r.order for r in reports}
        else:
            orders = {
                o.pk: o
                for o in Order.objects.select_for_update(of=("self",))
                .select_related("instrument")
                .filter(pk__in={r.order.pk for r in reports})
                .order_by("pk")
            }
        pairs = sorted({(r.order.pk, r.venue_fill_id) for r in reports})
        with connection.cursor() as cursor:
            cursor.execute(
                _KNOWN_FILLS_SQL, [[o for o, _ in pairs], [f for _, f in pairs], tenancy.require_tenant_id()]
            )
            known = set(cursor.fetchall())
        todo, seen = [], set()
        for report in reports:
            key = (report.order.pk, report.venue_fill_id)
            if key not in known and key not in seen:
                seen.add(key)
                todo.append(report)
        if not todo:
            if also_write:
                update_rows(list(orders.values()), list(also_write))
            return 0
        positions = _locked_positions([orders[r.order.pk] for r in todo])
        days = _locked_profit_variables([(orders[r.order.pk], r.ts.date()) for r in todo])
        fills, inventory = [], {}
        for report in todo:
            order = orders[report.order.pk]
            instrument, book = order.instrument, book_for_venue(order.venue)
            known_fee = report.fee if report.fee is not None else Decimal(0)
            sign = 1 if order.side == "buy" else -1
            position = positions[(order.bot_id, order.instrument_id, book)]
            before = PositionState(position.quantity, position.average_price, position.realized_pnl, position.fees)
            after = before.apply_fill(
                side_sign=sign,
                quantity=report.quantity,
                price=report.price,
                fee=known_fee,
                multiplier=instrument.multiplier,
            )
            fill = Fill(
                tenant_id=order.tenant_id,
                order=order,
                bot_id=order.bot_id,
                venue=order.venue,
                instrument=instrument,
                venue_fill_id=report.venue_fill_id,
                side=order.side,
                quantity=report.quantity,
                price=report.price,
                reference_price=report.reference_price,
                fee=report.fee,
                slippage=report.slippage,
                realized_pnl=after.realized_pnl - before.realized_pnl,
                bot_stage=order.bot_stage,
                ts=report.ts,
                trace_id=current_trace_id(),
            )
            fills.append(fill)
            total = order.filled_quantity + report.quantity
            order.average_price = (
                (order.average_price or Decimal(0)) * order.filled_quantity + report.price * report.quantity
            ) / total
            order.filled_quantity = total
            order.fees += known_fee
            order.slippage += report.slippage
            if order.status in Order.OPEN_STATUSES:
                order.status = Order.Status.FILLED if total >= order.quantity else Order.Status.PARTIALLY_FILLED
            position.quantity, position.average_price = after.quantity, after.average_price
            position.realized_pnl, position.fees = after.realized_pnl, after.fees
            inventory[(order.venue, instrument.symbol)] = (
                inventory.get((order.venue, instrument.symbol), Decimal(0)) + sign * report.quantity
            )
            _apply_profit_variables(days[(order.bot_id, book, fill.ts.date())], order, fill, before, after)
        now = timezone.now()
        insert_rows(fills)
        touched = list({id(f.order): f.order for f in fills}.values())
        for row in [*touched, *positions.values(), *days.values()]:
            row.updated_at = now
        order_fields = ["average_price", "filled_quantity", "fees", "slippage", "status", "updated_at"]
        if also_write:
            update_rows(list(orders.values()), [*order_fields, *also_write])
        else:
            update_rows(touched, order_fields)
        update_rows(list(positions.values()), ["quantity", "average_price", "realized_pnl", "fees", "updated_at"])
        update_rows(list(days.values()), [*PROFIT_FIELDS, "updated_at"])
        for (venue, asset), delta in sorted(inventory.items()):
            _add_inventory(venue, asset, delta)
        _refresh_intents_status({o.intent_id for o in touched})
    return len(fills)


PROFIT_FIELDS = ["pnl", "fees", "slippage", "turnover", "exposure", "fills", "closing_trades", "winning_trades"]


def _locked_positions(orders: list[Order]) -> dict[tuple[int, int, str], StrategyPosition]:
    keys = sorted({(o.bot_id, o.instrument_id, book_for_venue(o.venue)) for o in orders})
    tenant_id = tenancy.require_tenant_id()
    insert_rows(
        [StrategyPosition(tenant_id=tenant_id, bot_id=b, instrument_id=i, book=book) for b, i, book in keys],
        ignore_conflicts=True,
    )
    wanted = set(keys)
    rows = StrategyPosition.objects.raw(
        _LOCK_POSITIONS_SQL,
        [tenant_id, sorted({k[0] for k in keys}), sorted({k[1] for k in keys}), sorted({str(k[2]) for k in keys})],
    )
    return {key: row for row in rows if (key := (row.bot_id, row.instrument_id, row.book)) in wanted}


def _locked_profit_variables(order_days: list[tuple[Order, object]]) -> dict[tuple[int, str, object], ProfitVariables]:
    keys = sorted({(o.bot_id, book_for_venue(o.venue), day) for o, day in order_days})
    tenant_id = tenancy.require_tenant_id()
    insert_rows(
        [ProfitVariables(tenant_id=tenant_id, bot_id=b, book=book, day=day) for b, book, day in keys],
        ignore_conflicts=True,
    )
    wanted = set(keys)
    rows = ProfitVariables.objects.raw(
        _LOCK_PROFIT_VARIABLES_SQL,
        [tenant_id, sorted({k[0] for k in keys}), sorted({str(k[1]) for k in keys}), sorted({k[2] for k in keys})],
    )
    return {key: row for row in rows if (key := (row.bot_id, row.book, row.day)) in wanted}


# The rows _locked_positions and _locked_profit_variables lock (in key order, as the ORM's select_for_update with
# the same filters and order did, the tenant's filter written out as its manager adds it), as fixed SQL: a booking
# runs for every bar that fills anything, a few orders each at the OMS bench's rates, and compiling these two ORM
# queries cost more Python than booking a dozen fills.
_LOCK_POSITIONS_SQL = f"""
SELECT * FROM {StrategyPosition._meta.db_table}
 WHERE tenant_id = %s AND bot_id = ANY(%s) AND instrument_id = ANY(%s) AND book = ANY(%s)
 ORDER BY bot_id, instrument_id, book FOR UPDATE
"""
_LOCK_PROFIT_VARIABLES_SQL = f"""
SELECT * FROM {ProfitVariables._meta.db_table}
 WHERE tenant_id = %s AND bot_id = ANY(%s) AND book = ANY(%s) AND day = ANY(%s::date[])
 ORDER BY bot_id, book, day FOR UPDATE
"""


def _apply_profit_variables(
    row: ProfitVariables, order: Order, fill: Fill, before: PositionState, after: PositionState
) -> None:
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


# The reports' fills already recorded, pair by pair on the (order, venue fill id) unique index: the ORM's filter
# (order IN ..., fill id IN ...) went through the tenant-leading (tenant, bot, ts) index, every fill of the tenant,
# under the statistics of a tenant grown since the last ANALYZE.
_KNOWN_FILLS_SQL = f"""
SELECT f.order_id, f.venue_fill_id FROM unnest(%s::bigint[], %s::text[]) AS k(order_id, fill_id) CROSS JOIN LATERAL (
    SELECT order_id, venue_fill_id FROM {Fill._meta.db_table} f
     WHERE f.order_id = k.order_id AND f.venue_fill_id = k.fill_id AND f.tenant_id = %s OFFSET 0
) f
"""

# The intents a booking may move, locked one by one on the primary key in id order, keeping those WORKING or
# PARTIALLY_FILLED (compared outside the lateral scan, so no status index stands in for the key: see below).
_LOCK_INTENTS_SQL = f"""
SELECT t.id, t.status FROM unnest(%s::bigint[]) AS k(id) CROSS JOIN LATERAL (
    SELECT id, status FROM {TradeIntent._meta.db_table} t WHERE t.id = k.id AND t.tenant_id = %s OFFSET 0 FOR UPDATE
) t
 WHERE t.status = ANY(%s)
"""

# The leg orders of some intents, looked up intent by intent on the intent index (a lateral scan kept apart by
# OFFSET 0): with the statistics of a tenant that grew since the last ANALYZE, the planner took the tenant index
# for a few rows and read every order the tenant had, on every bar a fill was booked on.
_LEGS_OF_INTENTS_SQL = f"""
SELECT o.intent_id, o.status, o.filled_quantity FROM unnest(%s::bigint[]) AS k(id) CROSS JOIN LATERAL (
    SELECT intent_id, status, filled_quantity FROM {Order._meta.db_table} o
     WHERE o.intent_id = k.id AND o.purpose = %s AND o.tenant_id = %s OFFSET 0
) o
"""


def _refresh_intents_status(intent_ids: set[int]) -> None:
    """:func:`_refresh_intent_status` for many intents: one read of their statuses (locked) and one of their legs,
    then one statement per move (FILLED, PARTIALLY_FILLED) writing the intents and their audit rows together
    (``execution.orders.intent_moves.move_audited``). Only ids and statuses are read, not the intents' rows (their
    risk checks are a JSON document each)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK_INTENTS_SQL,
            [sorted(intent_ids), tenancy.require_tenant_id(), [Status.WORKING, Status.PARTIALLY_FILLED]],
        )
        current = dict(cursor.fetchall())
    legs: dict[int, list[tuple[str, Decimal]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_LEGS_OF_INTENTS_SQL, [list(current), Order.Purpose.LEG, tenancy.require_tenant_id()])
        for intent_id, status, filled in cursor.fetchall():
            legs.setdefault(intent_id, []).append((status, filled))
    moves: dict[tuple[str, str], list[int]] = {}
    for intent_id, before in current.items():
        rows = legs.get(intent_id, [])
        if rows and all(status == Order.Status.FILLED for status, _ in rows):
            to = Status.FILLED
        elif any(filled > 0 for _, filled in rows):
            to = Status.PARTIALLY_FILLED
        else:
            continue
        if to != before:
            moves.setdefault((before, to), []).append(intent_id)
    now, tenant_id = timezone.now(), tenancy.require_tenant_id()
    for (before, to), ids in sorted(moves.items()):
        move_audited(
            "UPDATE execution_tradeintent AS t SET status = %s, updated_at = %s WHERE t.tenant_id = %s "
            'AND t.id = ANY(%s) AND t.status = %s RETURNING t."id"',
            [to, now, tenant_id, ids, before],
            before=before,
            after=to,
        )
