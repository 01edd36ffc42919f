"""The funding/basis scanner's pure scan: the edge net of both legs' entry and exit fees over the holding period,
the direction by the funding's sign (the reverse only when allowed and held), the close when it stops paying or
has been held long enough, and why not (threshold, inventory, stale data) with the numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bots.strategies import Inventory, MarketSnapshot, MissingQuote, QuoteData, get_strategy
from bots.strategies.funding import (
    FUNDING_EXTRA,
    LONG_SPOT_SHORT_PERP,
    POSITIONS_EXTRA,
    SHORT_SPOT_LONG_PERP,
    FundingMarket,
    HeldPosition,
    PerpMarket,
)

NOW = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
NEXT_FUNDING = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
FEES = {"coinbase": Decimal("0.0005"), "hyperliquid": Decimal("0.00035")}  # 2 x (5 + 3.5) = 17 bps round trip


def spot(bid="50000", ask="50001", size="2", venue="coinbase") -> QuoteData:
    return QuoteData("BTC-USD", venue, "USD", Decimal(bid), Decimal(ask), Decimal(size), Decimal(size), NOW, 100)


def perp(rate="0.0001", bid="50010", ask="50011", size="3", interval=1) -> PerpMarket:
    return PerpMarket(
        "BTC-USD",
        "hyperliquid",
        Decimal(bid),
        Decimal(ask),
        Decimal(size),
        Decimal(size),
        Decimal(bid),
        Decimal(rate),
        interval,
        NEXT_FUNDING,
        200,
    )


def market(*perps, spots=None, missing=(), positions=(), fees=FEES) -> MarketSnapshot:
    return MarketSnapshot(
        as_of=NOW,
        quotes=tuple(spots if spots is not None else [spot()]),
        taker_fees=fees,
        extras={FUNDING_EXTRA: FundingMarket(tuple(perps), tuple(missing)), POSITIONS_EXTRA: tuple(positions)},
    )


CASH = Inventory({("coinbase", "USD"): Decimal("100000"), ("coinbase", "BTC-USD"): Decimal("0.3")})


def scan(params=None, snapshot=None, inventory=CASH, now=NOW):
    strategy = get_strategy("funding_arbitrage")
    return strategy.scan(strategy.validate(params or {}), snapshot, inventory, now)


def test_positive_funding_over_the_holding_period_net_of_four_fees_opens_long_spot_short_perp():
    # 1 bp an hour for 24 h = 24 bps; basis (50010 - 50001)/50001 = 1.8 bps; exit cost (1 + 1)/2 = 0.2 bps;
    # fees 17 bps: net 8.6 bps >= 5.
    result = scan({"max_notional": 10000}, market(perp("0.0001")))

    assert result.reason_code is None
    numbers = result.plan.opportunity.numbers
    assert (numbers["funding_bps"], numbers["basis_bps"], numbers["exit_cost_bps"], numbers["fees_bps"]) == (
        Decimal("24.0000"),
        Decimal("1.8000"),
        Decimal("0.2000"),
        Decimal("17.0000"),
    )
    assert numbers["net_edge_bps"] == Decimal("8.6000")
    spot_leg, perp_leg = result.plan.legs
    # Size: 10,000 / 50,001 = 0.19999600 BTC (the notional binds, not the books or the cash).
    assert (spot_leg.venue, spot_leg.side, spot_leg.limit_price, spot_leg.quantity) == (
        "coinbase",
        "buy",
        Decimal("50001"),
        Decimal("0.19999600"),
    )
    assert (perp_leg.venue, perp_leg.side, perp_leg.limit_price, perp_leg.quantity) == (
        "hyperliquid",
        "sell",
        Decimal("50010"),
        Decimal("0.19999600"),
    )
    assert result.plan.window_start == NEXT_FUNDING and result.plan.failure_policy == "FLATTEN"
    assert result.plan.opportunity.venues["direction"] == LONG_SPOT_SHORT_PERP


def test_a_shorter_holding_period_does_not_pay_the_fees_and_says_so_with_the_numbers():
    result = scan({"holding_hours": 12}, market(perp("0.0001")))
    assert (result.plan, result.reason_code) == (None, "NO_SIGNAL")
    assert result.best.why_not == "below_threshold"
    assert result.details["best"]["net_edge_bps"] == -3.4  # 12 + 1.8 - 0.2 - 17


def test_negative_funding_goes_short_spot_long_perp_only_when_allowed_and_only_what_the_venue_holds():
    negative = market(perp("-0.0002", bid="49990", ask="49991"), spots=[spot("50000", "50001")])
    assert scan({}, negative).reason_code == "NO_SIGNAL"  # the reverse is not allowed by default

    result = scan({"allow_reverse": True, "max_notional": 100000}, negative)

    spot_leg, perp_leg = result.plan.legs
    assert (spot_leg.side, spot_leg.limit_price, perp_leg.side, perp_leg.limit_price) == (
        "sell",
        Decimal("50000"),
        "buy",
        Decimal("49991"),
    )
    assert spot_leg.quantity == Decimal("0.3")  # all coinbase holds
    assert result.plan.opportunity.venues["direction"] == SHORT_SPOT_LONG_PERP
    empty = scan({"allow_reverse": True}, negative, inventory=Inventory({}))
    assert empty.reason_code == "RISK_BLOCKED" and "coinbase holds no BTC-USD" in empty.details["blocked"]["why_not"]


def test_without_cash_at_the_spot_venue_nothing_opens_and_the_limit_is_named():
    result = scan({}, market(perp("0.0003")), inventory=Inventory({}))
    assert result.reason_code == "RISK_BLOCKED" and result.details["limit"] == "inventory"
    assert "coinbase holds no USD" in result.details["blocked"]["why_not"]


def test_a_stale_perpetual_is_data_stale_with_its_age_and_nothing_is_priced():
    stale = MissingQuote("BTC-USD", "hyperliquid", "DATA_STALE", "latest funding/basis is 9000 ms old", 9000)
    result = scan({}, market(missing=[stale]))
    assert (result.plan, result.reason_code, result.details["age_ms"]) == (None, "DATA_STALE", 9000)
    assert result.opportunities == ()


def test_an_unknown_fee_prices_nothing_rather_than_assuming_zero():
    result = scan({}, market(perp("0.001"), fees={"coinbase": Decimal("0.0005")}))
    assert result.plan is None and result.best.why_not == "fee_unknown: hyperliquid"


def held(opened_at=NOW - timedelta(hours=5), direction=LONG_SPOT_SHORT_PERP, status="OPEN") -> HeldPosition:
    return HeldPosition(7, "BTC-USD", "coinbase", "hyperliquid", direction, Decimal("0.2"), status, opened_at)


def test_a_held_pair_closes_when_its_funding_turns_against_it():
    result = scan({}, market(perp("-0.00001"), positions=[held()]))

    plan = result.plan
    assert plan.opportunity.venues["close"] == "funding_below_exit" and plan.opportunity.legs_key == "close#7"
    spot_leg, perp_leg = plan.legs
    assert (spot_leg.side, spot_leg.limit_price, perp_leg.side, perp_leg.limit_price) == (
        "sell",
        Decimal("50000"),
        "buy",
        Decimal("50011"),
    )
    assert spot_leg.quantity == perp_leg.quantity == Decimal("0.2")
    assert plan.window_start == NEXT_FUNDING  # one exit attempt per funding interval


def test_a_held_pair_that_still_pays_stays_open_and_one_held_too_long_closes():
    assert scan({}, market(perp("0.0001"), positions=[held()])).plan is None
    old = held(opened_at=NOW - timedelta(hours=200))
    result = scan({"max_holding_hours": 168}, market(perp("0.0001"), positions=[old]))
    assert result.plan.opportunity.venues["close"] == "max_holding_time"


def test_a_held_pair_whose_quotes_are_stale_is_data_stale():
    stale = MissingQuote("BTC-USD", "hyperliquid", "DATA_STALE", "perpetual book 7000 ms old", 7000)
    result = scan({}, market(missing=[stale], positions=[held()]))
    assert result.reason_code == "DATA_STALE" and result.details["positions_without_quotes"] == [7]


def test_parameters_are_checked_field_by_field():
    import pytest

    from bots.strategies import StrategyParameterError

    strategy = get_strategy("funding_arbitrage")
    with pytest.raises(StrategyParameterError) as error:
        strategy.validate({"holding_hours": 48, "max_holding_hours": 24, "bogus": 1})
    assert set(error.value.errors) == {"bogus"}
    with pytest.raises(StrategyParameterError) as error:
        strategy.validate({"holding_hours": 48, "max_holding_hours": 24})
    assert set(error.value.errors) == {"max_holding_hours"}
