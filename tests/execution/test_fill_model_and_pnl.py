from decimal import Decimal as D

import pytest

from execution.fill_model import FillAt, FillBar, FillModel, OrderType, Side, SimOrder, simulate_fill
from execution.risk.pnl import PositionState

BAR = FillBar(open=4500.25, high=4503.0, low=4498.5, close=4501.75, volume=1000)
ES_TICK = D("0.25")


def fill(order, bar=BAR, **model):
    return simulate_fill(order, bar, model=FillModel(**model), tick_size=ES_TICK, multiplier=D("50"))


def test_market_order_fills_at_the_next_bars_open_by_default():
    result = fill(SimOrder(Side.BUY, D("2")))
    assert (result.price, result.quantity, result.remaining, result.fee, result.slippage) == (
        D("4500.25"),
        D("2"),
        D("0"),
        D("0"),
        D("0"),
    )


def test_fill_at_close_uses_the_close():
    assert fill(SimOrder(Side.SELL, D("1")), fill_at=FillAt.CLOSE).price == D("4501.75")


def test_no_bar_means_no_fill():
    assert simulate_fill(SimOrder(Side.BUY, D("1")), None, model=FillModel(), tick_size=ES_TICK) is None


def test_slippage_in_ticks_is_adverse_and_costed():
    buy = fill(SimOrder(Side.BUY, D("2")), slippage_ticks=2)
    sell = fill(SimOrder(Side.SELL, D("2")), slippage_ticks=2)
    assert buy.price == D("4500.75") and sell.price == D("4499.75")
    assert buy.slippage == D("0.50") * 2 * 50  # 2 ticks * 2 contracts * $50 per point


def test_slippage_in_bps_rounds_to_the_tick_against_the_trader():
    result = fill(SimOrder(Side.BUY, D("1")), slippage_bps=1)  # 0.45 points, rounds up to 0.50
    assert result.price == D("4500.75")


def test_fees_per_unit_and_in_bps():
    per_contract = fill(SimOrder(Side.BUY, D("3")), fee_per_unit=D("2.25"))
    assert per_contract.fee == D("6.75")
    crypto = simulate_fill(
        SimOrder(Side.BUY, D("0.5")),
        FillBar(100.0, 101.0, 99.0, 100.5, 10.0),
        model=FillModel(fee_bps=10, min_quantity_step=D("0.001")),
        tick_size=D("0.01"),
    )
    assert crypto.fee == D("0.05")  # 10 bps of 50.00


def test_partial_fill_when_size_exceeds_a_share_of_the_bars_volume():
    result = fill(SimOrder(Side.BUY, D("150")), max_volume_share=0.1)
    assert (result.quantity, result.remaining) == (D("100"), D("50"))
    thin = FillBar(1.0, 1.0, 1.0, 1.0, volume=5)
    assert (
        simulate_fill(SimOrder(Side.BUY, D("1")), thin, model=FillModel(max_volume_share=0.1), tick_size=ES_TICK)
        is None
    )


@pytest.mark.parametrize(
    "side,limit,expected",
    [
        (Side.BUY, "4499.00", D("4499.00")),  # traded through: fills at the limit
        (Side.BUY, "4497.00", None),  # never reached
        (Side.BUY, "4510.00", D("4500.25")),  # marketable: fills at the open, better than the limit
        (Side.SELL, "4502.00", D("4502.00")),
        (Side.SELL, "4504.00", None),
    ],
)
def test_limit_orders(side, limit, expected):
    result = fill(SimOrder(side, D("1"), OrderType.LIMIT, limit_price=D(limit)))
    assert (result.price if result else None) == expected


def test_a_limit_order_never_fills_through_its_limit_even_with_slippage():
    result = fill(SimOrder(Side.BUY, D("1"), OrderType.LIMIT, limit_price=D("4499.00")), slippage_ticks=4)
    assert result.price == D("4499.00")


@pytest.mark.parametrize(
    "side,stop,expected",
    [
        (Side.BUY, "4502.00", D("4502.00")),
        (Side.BUY, "4505.00", None),
        (Side.SELL, "4499.00", D("4499.00")),
        (Side.SELL, "4510.00", D("4500.25")),  # already through: fills at the open
    ],
)
def test_stop_orders(side, stop, expected):
    result = fill(SimOrder(side, D("1"), OrderType.STOP, stop_price=D(stop)))
    assert (result.price if result else None) == expected


def test_position_accounting_open_add_reduce_flip_and_close():
    pos = PositionState()
    pos = pos.apply_fill(side_sign=1, quantity=D("2"), price=D("100"), fee=D("1"))
    pos = pos.apply_fill(side_sign=1, quantity=D("2"), price=D("110"), fee=D("1"))
    assert (pos.quantity, pos.average_price, pos.realized_pnl) == (D("4"), D("105"), D("-2"))
    pos = pos.apply_fill(side_sign=-1, quantity=D("1"), price=D("115"), fee=D("0"))
    assert (pos.quantity, pos.average_price, pos.realized_pnl) == (D("3"), D("105"), D("8"))
    pos = pos.apply_fill(side_sign=-1, quantity=D("5"), price=D("100"), fee=D("0"))
    assert (pos.quantity, pos.average_price, pos.realized_pnl) == (D("-2"), D("100"), D("-7"))
    assert pos.unrealized_pnl(D("90")) == D("20")
    pos = pos.apply_fill(side_sign=1, quantity=D("2"), price=D("95"), fee=D("0.5"), multiplier=D("1"))
    assert (pos.quantity, pos.average_price, pos.realized_pnl, pos.fees) == (D("0"), D("0"), D("2.5"), D("2.5"))


def test_multiplier_scales_realized_pnl():
    pos = PositionState().apply_fill(side_sign=1, quantity=D("1"), price=D("4500"), fee=D("0"), multiplier=D("50"))
    pos = pos.apply_fill(side_sign=-1, quantity=D("1"), price=D("4502"), fee=D("0"), multiplier=D("50"))
    assert pos.realized_pnl == D("100")
