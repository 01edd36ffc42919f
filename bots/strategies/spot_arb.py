"""Cross-venue spot arbitrage: buy where the ask is low, sell where the bid is high, when the edge pays its costs.

For every instrument quoted on two or more venues, each ordered pair (buy venue, sell venue) whose sell bid is
above the buy ask is priced at the size the books and the inventory allow:

- gross spread: ``(sell bid - buy ask) x size``;
- fees: both legs' taker fees on their notionals (the snapshot's fee schedule, per venue);
- expected slippage: ``impact_bps`` of each leg's notional, scaled by the share of the quoted size taken (taking
  the whole top level is expected to cost ``impact_bps``; a tenth of it, a tenth of that);
- net edge: gross - fees - slippage, also in basis points of the buy notional;
- executable size: the least of both quoted sizes, ``max_quantity``, what the sell venue holds of the asset and
  what the buy venue's quote currency can pay for (fees included).

The best pair above ``min_net_edge_bps`` that the inventory allows becomes the plan: two limit legs at the quoted
prices (buy at the ask, sell at the bid), keyed by the opportunity window (``window_seconds``) so a rescan of the
same opportunity creates nothing. Pairs with a stale or missing quote are not priced at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from bots.strategies.base import ParamSpec, register_strategy
from bots.strategies.quotes import (
    IntentPlan,
    Inventory,
    MarketSnapshot,
    Opportunity,
    PlannedLeg,
    QuoteStrategy,
    ScanResult,
)

BPS = Decimal(10_000)
SIZE_STEP = Decimal("0.00000001")  # sizes are cut to 1e-8 units (satoshis), always down

BELOW_THRESHOLD = "below_threshold"
NO_INVENTORY = "inventory"
NO_FEE = "fee_unknown"
NOT_BEST = "not_best"


def window_start(now: datetime, seconds: int) -> datetime:
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


@register_strategy
class SpotArbitrage(QuoteStrategy):
    name = "spot_arbitrage"
    description = (
        "Cross-venue spot arbitrage on recorded top-of-book quotes: buy at the cheaper venue's ask and sell at the "
        "dearer venue's bid when the edge net of both taker fees and expected slippage passes the threshold."
    )
    market_kind = "spot"
    params = (
        ParamSpec(
            "min_net_edge_bps", float, 10.0, "Act only above this net edge (bps of the buy notional).", 0, 10_000
        ),
        ParamSpec("max_quantity", float, 1.0, "Most units of the instrument per intent.", minimum=1e-8),
        ParamSpec("impact_bps", float, 5.0, "Expected slippage when taking the whole quoted size (bps).", 0, 1_000),
        ParamSpec("window_seconds", int, 60, "Opportunity window: one intent per pair and window.", 1, 86_400),
        ParamSpec("flatten_on_leg_failure", bool, True, "Unwind a filled leg when the other leg fails."),
    )

    def scan(self, params: dict[str, Any], market: MarketSnapshot, inventory: Inventory, now: datetime) -> ScanResult:
        threshold = Decimal(repr(params["min_net_edge_bps"]))
        max_quantity = Decimal(repr(params["max_quantity"]))
        impact = Decimal(repr(params["impact_bps"])) / BPS
        priced: list[Opportunity] = []
        for symbol, quotes in sorted(market.by_symbol().items()):
            for buy in quotes:
                for sell in quotes:
                    if buy.venue == sell.venue or sell.bid <= buy.ask:
                        continue
                    priced.append(self._price(symbol, buy, sell, market, inventory, max_quantity, impact, threshold))
        eligible = [o for o in priced if not o.why_not]
        best_eligible = max(eligible, key=_rank, default=None)
        opportunities = tuple(_mark(o, best_eligible) for o in sorted(priced, key=lambda o: (o.symbol, o.legs_key)))
        best = max(opportunities, key=_rank, default=None)
        missing = [m.as_dict() for m in market.missing]
        details: dict[str, Any] = {"priced": len(priced), "threshold_bps": float(threshold)}
        if missing:
            details["missing_quotes"] = missing
        if best is not None:
            details["best"] = best.summary()
        if best_eligible is not None:
            chosen = next(o for o in opportunities if o.acted)
            quantity = chosen.numbers["executable_size"]
            legs = (
                PlannedLeg(chosen.venues["buy"], chosen.symbol, "buy", quantity, chosen.numbers["buy_price"]),
                PlannedLeg(chosen.venues["sell"], chosen.symbol, "sell", quantity, chosen.numbers["sell_price"]),
            )
            plan = IntentPlan(
                opportunity=chosen,
                legs=legs,
                window_start=window_start(now, params["window_seconds"]),
                failure_policy="FLATTEN" if params["flatten_on_leg_failure"] else "CANCEL_REMAINING",
            )
            return ScanResult(opportunities, plan, None, details, chosen)
        blocked = [o for o in opportunities if o.why_not.startswith(NO_INVENTORY)]
        if blocked:
            top = max(blocked, key=_rank)
            details |= {"limit": "inventory", "blocked": top.summary()}
            return ScanResult(opportunities, None, "RISK_BLOCKED", details, best)
        stale = [m for m in missing if m["reason"] == "DATA_STALE"]
        if stale:
            details["age_ms"] = max(m["age_ms"] or 0 for m in stale)
            return ScanResult(opportunities, None, "DATA_STALE", details, best)
        if not priced and (not market.quotes or any(m["reason"] == "DATA_UNAVAILABLE" for m in missing)):
            return ScanResult(opportunities, None, "DATA_UNAVAILABLE", details, best)
        return ScanResult(opportunities, None, "NO_SIGNAL", details, best)

    def _price(self, symbol, buy, sell, market, inventory, max_quantity, impact, threshold) -> Opportunity:
        key = f"{buy.venue}>{sell.venue}"
        venues = {"buy": buy.venue, "sell": sell.venue}
        buy_fee, sell_fee = market.taker_fees.get(buy.venue), market.taker_fees.get(sell.venue)
        quoted = min(buy.ask_size, sell.bid_size, max_quantity).quantize(SIZE_STEP, ROUND_DOWN)
        held = inventory.held(sell.venue, symbol)
        cash = inventory.held(buy.venue, buy.quote_asset)
        numbers: dict[str, Decimal] = {
            "buy_price": buy.ask,
            "sell_price": sell.bid,
            "gross_spread": sell.bid - buy.ask,
            "gross_spread_bps": (sell.bid - buy.ask) / buy.ask * BPS,
            "quoted_size": quoted,
            "sell_venue_holds": held,
            "buy_venue_cash": cash,
        }
        if buy_fee is None or sell_fee is None:
            unknown = [v for v, f in ((buy.venue, buy_fee), (sell.venue, sell_fee)) if f is None]
            return Opportunity(symbol, key, numbers, venues, why_not=f"{NO_FEE}: {', '.join(unknown)}")
        affordable = max(cash, Decimal(0)) / (buy.ask * (1 + buy_fee))
        size = min(quoted, max(held, Decimal(0)), affordable).quantize(SIZE_STEP, ROUND_DOWN)
        priced_size = size if size > 0 else quoted
        buy_notional, sell_notional = buy.ask * priced_size, sell.bid * priced_size
        fees = buy_notional * buy_fee + sell_notional * sell_fee
        slippage = impact * (
            buy_notional * _share(priced_size, buy.ask_size) + sell_notional * _share(priced_size, sell.bid_size)
        )
        net = (sell.bid - buy.ask) * priced_size - fees - slippage
        numbers |= {
            "buy_fee_rate": buy_fee,
            "sell_fee_rate": sell_fee,
            "buy_fee": buy_notional * buy_fee,
            "sell_fee": sell_notional * sell_fee,
            "fees": fees,
            "expected_slippage": slippage,
            "net_edge": net,
            "net_edge_bps": net / buy_notional * BPS if buy_notional > 0 else Decimal(0),
            "executable_size": size,
            "priced_size": priced_size,
        }
        why_not = ""
        if priced_size <= 0 or numbers["net_edge_bps"] < threshold:
            why_not = BELOW_THRESHOLD
        elif size <= 0:
            short = []
            if held <= 0:
                short.append(f"{sell.venue} holds no {symbol}")
            if affordable <= 0:
                short.append(f"{buy.venue} holds no {buy.quote_asset}")
            why_not = f"{NO_INVENTORY}: {'; '.join(short) or 'below one size step'}"
        return Opportunity(symbol, key, numbers, venues, why_not=why_not)


def _share(size: Decimal, quoted: Decimal) -> Decimal:
    return size / quoted if quoted > 0 else Decimal(1)


def _rank(opportunity: Opportunity) -> tuple:
    """Best first by net edge in bps; ties broken by name, so a replay picks the same one."""
    return (opportunity.numbers.get("net_edge_bps", Decimal("-Infinity")), opportunity.symbol, opportunity.legs_key)


def _mark(opportunity: Opportunity, chosen: Opportunity | None) -> Opportunity:
    if chosen is None or opportunity.why_not:
        return opportunity
    if opportunity is chosen:
        return Opportunity(opportunity.symbol, opportunity.legs_key, opportunity.numbers, opportunity.venues, True)
    return Opportunity(
        opportunity.symbol, opportunity.legs_key, opportunity.numbers, opportunity.venues, False, NOT_BEST
    )
