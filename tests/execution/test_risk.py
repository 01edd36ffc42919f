"""Each pre-trade limit passes at its bound, refuses past it, and names the limit and the values."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from execution.risk.checks import (
    OrderRequest,
    RecentOrder,
    RiskLimits,
    RiskScope,
    RiskState,
    Side,
    TradingState,
    cancel_retry_after,
    check_cancel,
    check_order,
    reduces_exposure,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def order(side=Side.BUY, quantity="1", price="100", instrument="ES", **kwargs) -> OrderRequest:
    return OrderRequest(instrument=instrument, side=side, quantity=D(quantity), price=D(price), at=NOW, **kwargs)


def bot(limits=None, **state) -> RiskScope:
    return RiskScope("bot", limits or RiskLimits(), RiskState(**state))


def refusal(decision, limit):
    matches = [check for check in decision.refusals if check.limit == limit]
    assert matches, f"expected a {limit} refusal, got {decision.refusals}"
    return matches[0]


def test_no_limits_configured_passes_only_the_trading_state_check():
    decision = check_order(order(), [bot()])
    assert decision.passed
    assert [c.limit for c in decision.checks] == ["trading_state"]


def test_no_scope_is_refused_rather_than_passed():
    with pytest.raises(ValueError, match="fail closed"):
        check_order(order(), [])


@pytest.mark.parametrize("bad", [{"quantity": "0"}, {"quantity": "-1"}, {"price": "0"}])
def test_malformed_orders_are_refused_at_construction(bad):
    with pytest.raises(ValueError):
        order(**bad)


def test_max_order_size():
    limits = RiskLimits(max_order_size=D(5))
    assert check_order(order(quantity="5"), [bot(limits)]).passed
    check = refusal(check_order(order(quantity="6"), [bot(limits)]), "max_order_size")
    assert check.values == {"quantity": "6", "limit": "5"} and check.scope == "bot"


def test_max_notional_uses_the_multiplier():
    limits = RiskLimits(max_notional=D(10_000))
    assert check_order(order(quantity="2", price="100", multiplier=D(50)), [bot(limits)]).passed
    check = refusal(check_order(order(quantity="3", price="100", multiplier=D(50)), [bot(limits)]), "max_notional")
    assert check.values == {"notional": "15000", "limit": "10000"}


def test_max_position_refuses_growth_past_the_limit_but_lets_exposure_shrink():
    limits = RiskLimits(max_position=D(3))
    assert check_order(order(quantity="1"), [bot(limits, position=D(2))]).passed
    check = refusal(check_order(order(quantity="2"), [bot(limits, position=D(2))]), "max_position")
    assert check.values["position_after"] == "4" and check.values["limit"] == "3"
    assert check_order(order(Side.SELL, quantity="1"), [bot(limits, position=D(5))]).passed
    refusal(check_order(order(Side.SELL, quantity="9"), [bot(limits, position=D(5))]), "max_position")


def test_max_daily_loss_blocks_new_risk_once_reached():
    limits = RiskLimits(max_daily_loss=D(500))
    assert check_order(order(), [bot(limits, daily_pnl=D(-499))]).passed
    check = refusal(check_order(order(), [bot(limits, daily_pnl=D(-500))]), "max_daily_loss")
    assert check.values["daily_pnl"] == "-500"
    assert check_order(order(Side.SELL), [bot(limits, position=D(2), daily_pnl=D(-800))]).passed


def test_max_orders_per_minute_counts_only_the_last_minute():
    limits = RiskLimits(max_orders_per_minute=2)
    old = RecentOrder("ES", Side.BUY, D(1), D(99), NOW - timedelta(seconds=61))
    recent = RecentOrder("ES", Side.BUY, D(1), D(98), NOW - timedelta(seconds=30))
    assert check_order(order(), [bot(limits, recent_orders=(old, recent))]).passed
    check = refusal(check_order(order(), [bot(limits, recent_orders=(recent, recent))]), "max_orders_per_minute")
    assert check.values == {"orders_last_minute": "2", "limit": "2"}


def test_max_cancels_per_minute():
    limits = RiskLimits(max_cancels_per_minute=1)
    assert check_cancel(NOW, [bot(limits, recent_cancels=(NOW - timedelta(seconds=90),))]).passed
    decision = check_cancel(NOW, [bot(limits, recent_cancels=(NOW - timedelta(seconds=10),))])
    values = refusal(decision, "max_cancels_per_minute").values
    assert values == {"cancels_last_minute": "1", "cancels_requested": "1", "limit": "1"}
    assert cancel_retry_after(NOW, [bot(limits, recent_cancels=(NOW - timedelta(seconds=10),))]) == 50


def test_a_cancel_of_several_orders_counts_each_and_waits_for_enough_of_the_minute_to_age_out():
    limits = RiskLimits(max_cancels_per_minute=3)
    scopes = [bot(limits, recent_cancels=(NOW - timedelta(seconds=50), NOW - timedelta(seconds=20)))]
    assert check_cancel(NOW, scopes, cancels=1).passed
    assert not check_cancel(NOW, scopes, cancels=2).passed
    assert cancel_retry_after(NOW, scopes, cancels=2) == 10  # the older one leaves the window
    assert cancel_retry_after(NOW, scopes, cancels=3) == 40  # both must
    assert cancel_retry_after(NOW, scopes, cancels=4) is None  # more than the limit: no wait is enough


def test_a_halted_scope_may_still_cancel():
    assert check_cancel(NOW, [bot(trading_state=TradingState.HALTED)]).passed


def test_duplicate_orders_within_the_window_are_refused():
    limits = RiskLimits(duplicate_window=timedelta(seconds=30))
    same = RecentOrder("ES", Side.BUY, D(1), D(100), NOW - timedelta(seconds=10))
    check = refusal(check_order(order(), [bot(limits, recent_orders=(same,))]), "duplicate_order")
    assert check.values["previous_at"] == same.at.isoformat() and check.values["window_seconds"] == "30"
    outside = RecentOrder("ES", Side.BUY, D(1), D(100), NOW - timedelta(seconds=31))
    other_price = RecentOrder("ES", Side.BUY, D(1), D(100.25), NOW - timedelta(seconds=5))
    other_side = RecentOrder("ES", Side.SELL, D(1), D(100), NOW - timedelta(seconds=5))
    assert check_order(order(), [bot(limits, recent_orders=(outside, other_price, other_side))]).passed


def test_allowed_instruments_and_sessions():
    limits = RiskLimits(allowed_instruments=frozenset({"ES", "NQ"}), allowed_sessions=frozenset({"RTH"}))
    assert check_order(order(session="RTH"), [bot(limits)]).passed
    check = refusal(check_order(order(instrument="CL", session="RTH"), [bot(limits)]), "allowed_instruments")
    assert check.values == {"instrument": "CL", "allowed": ["ES", "NQ"]}
    assert refusal(check_order(order(session="ETH"), [bot(limits)]), "allowed_sessions").values["session"] == "ETH"
    refusal(check_order(order(), [bot(limits)]), "allowed_sessions")  # unknown session fails closed


def test_halted_refuses_every_order():
    decision = check_order(order(Side.SELL), [bot(position=D(3), trading_state=TradingState.HALTED)])
    assert refusal(decision, "trading_state").values["trading_state"] == "HALTED"


@pytest.mark.parametrize(
    ("position", "side", "quantity", "passes"),
    [
        ("3", Side.SELL, "3", True),  # flatten
        ("3", Side.SELL, "1", True),  # shrink
        ("3", Side.SELL, "4", False),  # flip to short: new exposure
        ("3", Side.BUY, "1", False),  # grow
        ("0", Side.SELL, "1", False),  # open
        ("-2", Side.BUY, "2", True),  # cover a short
    ],
)
def test_reduce_only_passes_only_exposure_reducing_orders(position, side, quantity, passes):
    decision = check_order(
        order(side, quantity=quantity), [bot(position=D(position), trading_state=TradingState.REDUCE_ONLY)]
    )
    assert decision.passed is passes
    assert reduces_exposure(D(position), side, D(quantity)) is passes


def test_every_scope_is_checked_and_named():
    tenant = RiskScope("tenant", RiskLimits(max_position=D(10)), RiskState(position=D(10)))
    decision = check_order(order(), [bot(RiskLimits(max_position=D(5))), tenant])
    assert [(c.scope, c.limit, c.passed) for c in decision.checks] == [
        ("bot", "trading_state", True),
        ("bot", "max_position", True),
        ("tenant", "trading_state", True),
        ("tenant", "max_position", False),
    ]
    assert not decision.passed


def test_the_same_inputs_give_the_same_decision():
    limits = RiskLimits(max_order_size=D(2), max_position=D(3), duplicate_window=timedelta(seconds=5))
    scopes = [bot(limits, position=D(1))]
    assert check_order(order(quantity="3"), scopes) == check_order(order(quantity="3"), scopes)
    assert [c.as_dict() for c in check_order(order(quantity="3"), scopes).checks][1]["limit"] == "max_order_size"
