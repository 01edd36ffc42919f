"""The funding/basis scanner: when a perpetual's funding (and its basis to spot) pays more than both legs' fees,
open a hedged pair (spot long + perpetual short when funding is positive, the reverse when allowed and the spot
venue holds the asset to sell), and close it when it no longer pays or has been held long enough.

Pure, like every strategy (DESIGN.md invariant 8): a function of (parameters, a snapshot of plain data, now). The
execution side (execution.arbitrage.funding_scan) reads the quotes, basis, fees, inventory and the bot's open
positions, calls :func:`scan_funding`, and turns its actions into intents; a replay over recorded quotes builds the
same snapshot as of a past time and so gets the same actions.

The economics, in basis points of the spot price, for an entry at the quoted prices now (buy at the ask, sell at
the bid) held ``holding_hours``::

    funding   = side x rate x 10_000 x holding_hours / interval_hours   (side +1 when the perpetual is short)
    basis     = (perp bid - spot ask) / spot ask x 10_000                (long spot; the reverse: spot bid - perp ask)
    exit cost = half of each book's spread now                          (the exit is assumed at zero basis, at mid)
    fees      = 2 x (spot taker fee + perp taker fee) x 10_000           (entry and exit of both legs)
    net edge  = funding + basis - exit cost - fees

A perpetual's price is anchored to its index (the spot) by funding, so the basis at entry is expected back at the
exit: a rich basis adds to the edge, a poor one subtracts. The pair opens when ``net edge >= entry_threshold_bps``;
an open pair closes when its funding per interval (signed for its side) falls below ``exit_funding_bps``, or once
it has been held ``max_holding_hours``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from bots.strategies.base import ParamSpec, register_strategy
from bots.strategies.quotes import (
    IntentPlan,
    Inventory,
    MarketSnapshot,
    MissingQuote,
    Opportunity,
    PlannedLeg,
    QuoteData,
    QuoteStrategy,
    ScanResult,
)

BPS = Decimal(10_000)
SIZE_STEP = Decimal("0.00000001")

LONG_SPOT_SHORT_PERP = "long_spot_short_perp"
SHORT_SPOT_LONG_PERP = "short_spot_long_perp"

FUNDING_EXTRA = "funding"  # MarketSnapshot.extras key: a FundingMarket
POSITIONS_EXTRA = "funding_positions"  # MarketSnapshot.extras key: the bot's active HeldPositions

BELOW_THRESHOLD = "below_threshold"
NO_INVENTORY = "inventory"
NO_FEE = "fee_unknown"
NOT_BEST = "not_best"


@dataclass(frozen=True)
class PerpMarket:
    """A usable perpetual at the scan's time: its book, its mark and the funding rate of its next funding time."""

    symbol: str
    venue: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    mark: Decimal
    funding_rate: Decimal
    interval_hours: int
    next_funding_at: datetime
    age_ms: int


@dataclass(frozen=True)
class FundingMarket:
    perps: tuple[PerpMarket, ...] = ()
    missing: tuple[MissingQuote, ...] = ()  # perpetual book, basis or funding that is stale or absent


@dataclass(frozen=True)
class HeldPosition:
    """An active funding position of the bot (execution.funding_models.FundingPosition) as plain data."""

    id: int
    symbol: str
    spot_venue: str
    perp_venue: str
    direction: str
    quantity: Decimal
    status: str  # OPENING | OPEN | CLOSING
    opened_at: datetime | None


def _bps(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


def _side(direction: str) -> int:
    """+1 when the perpetual leg is short (a positive rate is received), -1 when it is long."""
    return 1 if direction == LONG_SPOT_SHORT_PERP else -1


def _legs(direction: str, spot: QuoteData, perp: PerpMarket, quantity: Decimal, *, closing: bool):
    """The two legs, spot first: limits at the touch (buy at the ask, sell at the bid), so the risk check values
    them at the quoted price and neither leg trades through the book the scan saw."""
    buy_spot = (direction == LONG_SPOT_SHORT_PERP) != closing
    return (
        PlannedLeg(
            spot.venue, spot.symbol, "buy" if buy_spot else "sell", quantity, spot.ask if buy_spot else spot.bid
        ),
        PlannedLeg(
            perp.venue, perp.symbol, "sell" if buy_spot else "buy", quantity, perp.bid if buy_spot else perp.ask
        ),
    )


@register_strategy
class FundingBasisArbitrage(QuoteStrategy):
    name = "funding_arbitrage"
    description = (
        "Funding/basis arbitrage: long spot and short the perpetual (or the reverse) when the perpetual's funding "
        "over the expected holding period plus its basis to spot pays both legs' entry and exit fees; closes the "
        "pair when the funding no longer pays or after the maximum holding time."
    )
    market_kind = "funding"
    params = (
        ParamSpec("entry_threshold_bps", float, 5.0, "Net edge (bps of spot) needed to open a pair.", 0.0, 10_000.0),
        ParamSpec("holding_hours", float, 24.0, "Expected holding period the funding is counted over.", 1.0, 2160.0),
        ParamSpec(
            "exit_funding_bps",
            float,
            0.0,
            "Close when the funding per interval, signed for the pair's side, falls below this (bps).",
            -10_000.0,
            10_000.0,
        ),
        ParamSpec("max_holding_hours", float, 168.0, "Close a pair held this long, whatever it earns.", 1.0, 8760.0),
        ParamSpec("max_notional", float, 1000.0, "Spot notional of one pair (quote currency).", 1e-8, 1e12),
        ParamSpec("allow_reverse", bool, False, "May short spot (held at the venue) and go long the perpetual."),
        ParamSpec("flatten_on_leg_failure", bool, True, "Unwind a filled leg when the other leg fails."),
    )

    def check(self, params: dict[str, Any]) -> dict[str, list[str]]:
        if params["max_holding_hours"] < params["holding_hours"]:
            return {"max_holding_hours": ["Must be at least holding_hours."]}
        return {}

    def scan(self, params: dict[str, Any], market: MarketSnapshot, inventory: Inventory, now: datetime) -> ScanResult:
        """Close the first held pair that no longer pays; else open the best opportunity above the threshold;
        else say why not. Deterministic: candidates are ordered and ties broken by names."""
        funding: FundingMarket = market.extras.get(FUNDING_EXTRA) or FundingMarket()
        positions: tuple[HeldPosition, ...] = tuple(market.extras.get(POSITIONS_EXTRA) or ())
        spots = {(q.symbol, q.venue): q for q in market.quotes}
        perps = {(p.symbol, p.venue): p for p in funding.perps}
        missing = [m.as_dict() for m in (*market.missing, *funding.missing)]
        policy = "FLATTEN" if params["flatten_on_leg_failure"] else "CANCEL_REMAINING"
        details: dict[str, Any] = {"threshold_bps": params["entry_threshold_bps"], "positions": len(positions)}
        if missing:
            details["missing_quotes"] = missing

        unpriced_positions = []
        for position in sorted(positions, key=lambda p: p.id):
            if position.status != "OPEN":
                continue
            spot = spots.get((position.symbol, position.spot_venue))
            perp = perps.get((position.symbol, position.perp_venue))
            if spot is None or perp is None:
                unpriced_positions.append(position.id)
                continue
            closing = self._close(params, position, spot, perp, now, policy)
            if closing is not None:
                return ScanResult((closing.opportunity,), closing, None, details, closing.opportunity)
        if unpriced_positions:
            details["positions_without_quotes"] = unpriced_positions

        held = {p.symbol for p in positions}
        directions = [LONG_SPOT_SHORT_PERP] + ([SHORT_SPOT_LONG_PERP] if params["allow_reverse"] else [])
        priced = [
            self._price(params, spot, perp, direction, market, inventory)
            for (symbol, _), perp in sorted(perps.items())
            if symbol not in held
            for (spot_symbol, _), spot in sorted(spots.items())
            if spot_symbol == symbol
            for direction in directions
        ]
        eligible = [o for o in priced if not o.why_not]
        chosen = max(eligible, key=_rank, default=None)
        opportunities = tuple(
            o
            if chosen is None or o.why_not
            else Opportunity(o.symbol, o.legs_key, o.numbers, o.venues, o is chosen, "" if o is chosen else NOT_BEST)
            for o in priced
        )
        best = max(opportunities, key=_rank, default=None)
        if best is not None:
            details["best"] = best.summary()
        if chosen is not None:
            acted = next(o for o in opportunities if o.acted)
            perp = perps[(acted.symbol, acted.venues["perp"])]
            legs = _legs(
                acted.venues["direction"],
                spots[(acted.symbol, acted.venues["spot"])],
                perp,
                acted.numbers["quantity"],
                closing=False,
            )
            # One entry per (symbol, venues, direction) and funding interval: the window is the funding time.
            plan = IntentPlan(opportunity=acted, legs=legs, window_start=perp.next_funding_at, failure_policy=policy)
            return ScanResult(opportunities, plan, None, details, acted)
        blocked = [o for o in opportunities if o.why_not.startswith(NO_INVENTORY)]
        if blocked:
            details |= {"limit": "inventory", "blocked": max(blocked, key=_rank).summary()}
            return ScanResult(opportunities, None, "RISK_BLOCKED", details, best)
        stale = [m for m in missing if m["reason"] == "DATA_STALE"]
        if stale and (not priced or unpriced_positions):
            details["age_ms"] = max(m["age_ms"] or 0 for m in stale)
            return ScanResult(opportunities, None, "DATA_STALE", details, best)
        if not priced and not positions:
            return ScanResult(opportunities, None, "DATA_UNAVAILABLE", details, best)
        return ScanResult(opportunities, None, "NO_SIGNAL", details, best)

    def _price(self, params, spot: QuoteData, perp: PerpMarket, direction: str, market, inventory) -> Opportunity:
        long_spot = direction == LONG_SPOT_SHORT_PERP
        side = _side(direction)
        venues = {"spot": spot.venue, "perp": perp.venue, "direction": direction}
        key = f"{spot.venue}+{perp.venue}:{direction}"
        spot_price = spot.ask if long_spot else spot.bid
        perp_price = perp.bid if long_spot else perp.ask
        periods = Decimal(repr(params["holding_hours"])) / Decimal(perp.interval_hours)
        numbers: dict[str, Decimal] = {
            "spot_price": spot_price,
            "perp_price": perp_price,
            "mark": perp.mark,
            "funding_rate": perp.funding_rate,
            "interval_hours": Decimal(perp.interval_hours),
            "funding_bps": _bps(side * perp.funding_rate * BPS * periods),
            "basis_bps": _bps(side * (perp_price - spot_price) / spot_price * BPS),
            "exit_cost_bps": _bps(((spot.ask - spot.bid) + (perp.ask - perp.bid)) / 2 / spot_price * BPS),
        }
        spot_fee, perp_fee = market.taker_fees.get(spot.venue), market.taker_fees.get(perp.venue)
        if spot_fee is None or perp_fee is None:
            unknown = [v for v, f in ((spot.venue, spot_fee), (perp.venue, perp_fee)) if f is None]
            return Opportunity(spot.symbol, key, numbers, venues, why_not=f"{NO_FEE}: {', '.join(unknown)}")
        numbers["fees_bps"] = _bps(2 * (spot_fee + perp_fee) * BPS)
        numbers["net_edge_bps"] = (
            numbers["funding_bps"] + numbers["basis_bps"] - numbers["exit_cost_bps"] - numbers["fees_bps"]
        )
        quoted = min(
            Decimal(repr(params["max_notional"])) / spot_price,
            spot.ask_size if long_spot else spot.bid_size,
            perp.bid_size if long_spot else perp.ask_size,
        )
        if long_spot:  # the spot venue's quote currency pays for the spot leg and its fee
            held = inventory.held(spot.venue, spot.quote_asset)
            affordable = max(held, Decimal(0)) / (spot_price * (1 + spot_fee))
            short_of = f"{spot.venue} holds no {spot.quote_asset}"
        else:  # only what the spot venue holds can be sold
            held = inventory.held(spot.venue, spot.symbol)
            affordable = max(held, Decimal(0))
            short_of = f"{spot.venue} holds no {spot.symbol}"
        numbers["spot_venue_holds"] = held
        numbers["quantity"] = min(quoted, affordable).quantize(SIZE_STEP, ROUND_DOWN)
        why_not = ""
        if numbers["net_edge_bps"] < Decimal(repr(params["entry_threshold_bps"])):
            why_not = BELOW_THRESHOLD
        elif numbers["quantity"] <= 0:
            why_not = f"{NO_INVENTORY}: {short_of if affordable <= 0 else 'below one size step'}"
        return Opportunity(spot.symbol, key, numbers, venues, why_not=why_not)

    def _close(
        self, params, position: HeldPosition, spot: QuoteData, perp: PerpMarket, now, policy
    ) -> IntentPlan | None:
        signed_bps = _bps(_side(position.direction) * perp.funding_rate * BPS)
        held_hours = (now - position.opened_at).total_seconds() / 3600 if position.opened_at else 0.0
        if held_hours >= params["max_holding_hours"]:
            reason = "max_holding_time"
        elif signed_bps < Decimal(repr(params["exit_funding_bps"])):
            reason = "funding_below_exit"
        else:
            return None
        legs = _legs(position.direction, spot, perp, position.quantity, closing=True)
        opportunity = Opportunity(
            position.symbol,
            f"close#{position.id}",
            {
                "signed_funding_bps": signed_bps,
                "funding_rate": perp.funding_rate,
                "held_hours": _bps(Decimal(repr(held_hours))),
                "spot_price": legs[0].limit_price,
                "perp_price": legs[1].limit_price,
                "quantity": position.quantity,
            },
            {
                "spot": position.spot_venue,
                "perp": position.perp_venue,
                "direction": position.direction,
                "close": reason,
                "position": str(position.id),
            },
            acted=True,
        )
        # Keyed by the position and the funding interval: one exit per position and interval however many scans see
        # it, and a refused or unfilled exit is tried again in the next interval.
        return IntentPlan(opportunity, legs, perp.next_funding_at, policy)


def _rank(opportunity: Opportunity) -> tuple:
    return (opportunity.numbers.get("net_edge_bps", Decimal("-Infinity")), opportunity.symbol, opportunity.legs_key)
