"""The sim fill model: how an order would have filled on a real bar. Pure and deterministic.

The sim venue (live paper trading) and the backtest engine both call :func:`simulate_fill`, so a backtest and a
replay of the same bars fill identically. It never invents a price: with no bar there is no fill.

Conventions: an order decided on bar *t* fills on bar *t+1* (``FillAt.NEXT_OPEN``, the default) or at bar *t*'s
close (``FillAt.CLOSE``, optimistic: the decision used that close). Slippage is always adverse and the fill price
is rounded to the tick grid away from the trader. Partial fills cap the filled quantity at a share of the bar's
volume; the rest stays working.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal


class FillAt(enum.StrEnum):
    NEXT_OPEN = "next_open"
    CLOSE = "close"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True, slots=True)
class FillBar:
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class FillModel:
    fill_at: FillAt = FillAt.NEXT_OPEN
    slippage_ticks: float = 0.0
    slippage_bps: float = 0.0
    fee_per_unit: Decimal = Decimal("0")
    fee_bps: float = 0.0
    max_volume_share: float | None = None  # None: no cap; 0.1: at most 10% of the bar's volume
    min_quantity_step: Decimal = Decimal("1")

    @classmethod
    def from_config(cls, config: dict | None) -> FillModel:
        config = config or {}
        return cls(
            fill_at=FillAt(config.get("fill_at", FillAt.NEXT_OPEN)),
            slippage_ticks=float(config.get("slippage_ticks", 0)),
            slippage_bps=float(config.get("slippage_bps", 0)),
            fee_per_unit=Decimal(str(config.get("fee_per_unit", "0"))),
            fee_bps=float(config.get("fee_bps", 0)),
            max_volume_share=(float(config["max_volume_share"]) if config.get("max_volume_share") else None),
            min_quantity_step=Decimal(str(config.get("min_quantity_step", "1"))),
        )


@dataclass(frozen=True, slots=True)
class SimOrder:
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SimFill:
    quantity: Decimal
    price: Decimal
    reference_price: Decimal  # the price before slippage: what slippage is measured against
    fee: Decimal
    slippage: Decimal  # cost of slippage in quote currency (always >= 0)
    remaining: Decimal


def _round_to_tick(price: float, tick_size: Decimal, side: Side) -> Decimal:
    """Round onto the tick grid against the trader: buys round up, sells down."""
    ticks = Decimal(repr(price)) / tick_size
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    return ticks.to_integral_value(rounding=rounding) * tick_size


def _trigger_price(order: SimOrder, bar: FillBar, reference: float) -> float | None:
    """The price at which an order executes on this bar before slippage, or None if it does not execute."""
    if order.order_type is OrderType.MARKET:
        return reference
    if order.order_type is OrderType.LIMIT:
        limit = float(order.limit_price)
        if order.side is Side.BUY:
            return min(reference, limit) if bar.low <= limit else None
        return max(reference, limit) if bar.high >= limit else None
    stop = float(order.stop_price)
    if order.side is Side.BUY:
        return max(reference, stop) if bar.high >= stop else None
    return min(reference, stop) if bar.low <= stop else None


def simulate_fill(
    order: SimOrder, bar: FillBar | None, *, model: FillModel, tick_size: Decimal, multiplier: Decimal = Decimal("1")
) -> SimFill | None:
    """Fill ``order`` on ``bar`` (the next bar, or the decision bar for ``FillAt.CLOSE``); None if it cannot fill."""
    if bar is None or order.quantity <= 0:
        return None
    reference = bar.close if model.fill_at is FillAt.CLOSE else bar.open
    executed_at = _trigger_price(order, bar, reference)
    if executed_at is None:
        return None

    quantity = order.quantity
    if model.max_volume_share is not None:
        cap = Decimal(repr(math.floor(bar.volume * model.max_volume_share / float(model.min_quantity_step))))
        quantity = min(quantity, cap * model.min_quantity_step)
        if quantity <= 0:
            return None

    slip = float(tick_size) * model.slippage_ticks + executed_at * model.slippage_bps / 10_000
    adverse = executed_at + order.side.sign * slip
    if order.order_type is OrderType.LIMIT:
        # A limit order never fills through its limit, slippage or not.
        limit = float(order.limit_price)
        adverse = min(adverse, limit) if order.side is Side.BUY else max(adverse, limit)
    price = _round_to_tick(adverse, tick_size, order.side)
    reference_price = _round_to_tick(executed_at, tick_size, order.side)
    notional = price * quantity * multiplier
    fee = (model.fee_per_unit * quantity + notional * Decimal(repr(model.fee_bps)) / Decimal(10_000)).quantize(
        Decimal("0.00000001")
    )
    slippage_cost = abs(price - reference_price) * quantity * multiplier
    return SimFill(
        quantity=quantity,
        price=price,
        reference_price=reference_price,
        fee=fee,
        slippage=slippage_cost,
        remaining=order.quantity - quantity,
    )


@dataclass(frozen=True, slots=True)
class FillQuote:
    """A venue's recorded top of book, the only thing a quote-driven sim fill may read."""

    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal


def simulate_quote_fill(
    order: SimOrder, quote: FillQuote | None, *, fee_rate: Decimal, multiplier: Decimal = Decimal("1")
) -> SimFill | None:
    """Fill ``order`` against a recorded quote (the paper twins of the spot venues, issue 18): a buy takes the ask
    and a sell the bid, up to the quoted size; a limit that the quote does not reach does not fill; the rest of the
    order stays working for the next quote. The fee is ``fee_rate`` of the notional (the venue's taker fee).
    Slippage is measured against the order's limit (the price the scan priced): zero when the quote is unchanged,
    never negative. No quote, no fill."""
    if quote is None or order.quantity <= 0 or order.order_type is OrderType.STOP:
        return None
    price, size = (quote.ask, quote.ask_size) if order.side is Side.BUY else (quote.bid, quote.bid_size)
    if order.order_type is OrderType.LIMIT:
        limit = order.limit_price
        if (order.side is Side.BUY and price > limit) or (order.side is Side.SELL and price < limit):
            return None
    quantity = min(order.quantity, size)
    if quantity <= 0:
        return None
    reference = order.limit_price if order.order_type is OrderType.LIMIT else price
    fee = (price * quantity * multiplier * fee_rate).quantize(Decimal("0.00000001"))
    slippage = max(order.side.sign * (price - reference), Decimal(0)) * quantity * multiplier
    return SimFill(
        quantity=quantity,
        price=price,
        reference_price=reference,
        fee=fee,
        slippage=slippage,
        remaining=order.quantity - quantity,
    )
