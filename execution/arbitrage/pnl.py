"""``arb_pnl``: what each spot arbitrage intent made, against what its scan expected.

Settled once the intent is terminal and none of its orders (legs or flatten orders) is still open, from the fills
alone (so settling again writes the same numbers): bought and sold quantity and average prices, every fill's fee,
the realized edge over the matched quantity, and the expected edge of the ``arb_spreads`` row that emitted it.
Scans settle their tenant's finished intents first (``settle_finished_intents``), so a row appears at the scan
after the intent ends; a replay settles at its end.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef

from controlplane.books import book_for_venue
from execution.models import ArbPnl, ArbSpread, Fill, Order, TradeIntent

BPS = Decimal(10_000)


def settle_finished_intents(*, bot_id: int | None = None) -> int:
    """Settle every acted spread of the current tenant whose intent is finished and not yet settled."""
    open_orders = Order.objects.filter(intent_id=OuterRef("intent_id"), status__in=Order.OPEN_STATUSES)
    spreads = (
        ArbSpread.objects.filter(acted=True, intent__status__in=TradeIntent.TERMINAL_STATUSES)
        .exclude(Exists(open_orders))
        .exclude(Exists(ArbPnl.objects.filter(intent_id=OuterRef("intent_id"))))
        .order_by("intent_id")
    )
    if bot_id is not None:
        spreads = spreads.filter(bot_id=bot_id)
    settled = 0
    for spread in spreads:
        arb_pnl_settle(spread=spread)
        settled += 1
    return settled


def arb_pnl_settle(*, spread: ArbSpread) -> ArbPnl:
    """The ``arb_pnl`` row of the intent ``spread`` emitted, computed from its fills (created or recomputed)."""
    intent = TradeIntent.objects.get(pk=spread.intent_id)
    fills = list(Fill.objects.filter(order__intent_id=intent.pk).order_by("id"))
    bought = sum((f.quantity for f in fills if f.side == "buy"), Decimal(0))
    sold = sum((f.quantity for f in fills if f.side == "sell"), Decimal(0))
    buy_avg = _average(f for f in fills if f.side == "buy")
    sell_avg = _average(f for f in fills if f.side == "sell")
    fees = None if any(f.fee is None for f in fills) else sum((f.fee for f in fills), Decimal(0))
    matched = min(bought, sold)
    realized = realized_bps = None
    if fees is not None:
        gross = matched * (sell_avg - buy_avg) if matched > 0 else Decimal(0)
        realized = gross - fees
        if matched > 0:
            realized_bps = realized / (matched * buy_avg) * BPS
    shortfall = (
        spread.net_edge_bps - realized_bps if spread.net_edge_bps is not None and realized_bps is not None else None
    )
    leg_venue = next((o.venue for o in Order.objects.filter(intent_id=intent.pk)[:1]), spread.buy_venue)
    values = {
        "tenant_id": intent.tenant_id,
        "spread": spread,
        "bot_id": intent.bot_id,
        "book": book_for_venue(leg_venue),
        "instrument": spread.instrument,
        "buy_venue": spread.buy_venue,
        "sell_venue": spread.sell_venue,
        "intent_status": intent.status,
        "bought_quantity": bought,
        "buy_average_price": buy_avg,
        "sold_quantity": sold,
        "sell_average_price": sell_avg,
        "matched_quantity": matched,
        "unmatched_quantity": bought - sold,
        "fees": fees,
        "realized_edge": _q(realized),
        "realized_edge_bps": _q(realized_bps, "0.0001"),
        "expected_edge": spread.net_edge,
        "expected_edge_bps": spread.net_edge_bps,
        "edge_shortfall_bps": _q(shortfall, "0.0001"),
        "fills": len(fills),
    }
    with transaction.atomic():
        row, _ = ArbPnl.objects.update_or_create(intent_id=intent.pk, defaults=values)
    return row


def _average(fills) -> Decimal | None:
    fills = list(fills)
    quantity = sum((f.quantity for f in fills), Decimal(0))
    if quantity == 0:
        return None
    return _q(sum((f.quantity * f.price for f in fills), Decimal(0)) / quantity)


def _q(value: Decimal | None, step: str = "1e-10") -> Decimal | None:
    return None if value is None else value.quantize(Decimal(step))
