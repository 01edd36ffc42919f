"""Quote strategies: scanners that decide on the venues' books (quotes, funding, basis), not on bars.

A quote strategy is registered in the same registry as the bar strategies (so a bot names it, the API lists and
validates its parameters, and the admin shows it unchanged), but the tick never asks it to ``decide`` on bars:
scanner bots tick through ``execution.arbitrage`` instead, which gathers the market and inventory as plain data,
calls :meth:`QuoteStrategy.scan`, writes what the scan found and emits at most one multi-leg intent.

``scan`` is pure, like ``decide`` (DESIGN.md invariant 8): a function of (parameters, market snapshot, inventory,
now) and nothing else, so the live scan and a replay over recorded quotes give the same plans. Numbers are
``Decimal`` throughout: prices, sizes and fees come from the venues as decimals, and an edge of a few basis points
must not drift in float rounding between a live scan and its replay.

API for the execution side (and for other scanners built on it)::

    strategy = get_strategy("spot_arbitrage")
    if is_quote_strategy(strategy):
        params = strategy.validate(bot.parameters)
        result = strategy.scan(params, snapshot, inventory, now)
        result.opportunities   # every candidate the scan priced (rows of arb_spreads), each acted or why not
        result.plan            # the intent to emit (legs, window), or None
        result.reason_code     # None when there is a plan; else the no-trade reason (a traces.ReasonCode value)
        result.details         # the numbers that explain the reason (the best opportunity, stale quotes ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bots.strategies.base import Bars, Decision, Strategy, available_strategies


@dataclass(frozen=True, slots=True)
class QuoteData:
    """One venue's usable top of book for one instrument at the scan's time (fresh, not crossed)."""

    symbol: str
    venue: str
    quote_asset: str  # the currency the venue's market is priced in (USD, USDT ...): what a buy spends there
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    received_at: datetime
    age_ms: int


@dataclass(frozen=True, slots=True)
class MissingQuote:
    """Why (instrument, venue) has no usable quote: ``reason`` is DATA_STALE or DATA_UNAVAILABLE, with the latest
    quote's age when there is one."""

    symbol: str
    venue: str
    reason: str
    detail: str
    age_ms: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MarketSnapshot:
    """What a scan may read about the market, as of ``as_of``. ``quotes`` are spot books; ``extras`` carries what
    other quote strategies need (funding rates, basis quotes), keyed by name, gathered by their execution side."""

    as_of: datetime
    quotes: tuple[QuoteData, ...] = ()
    missing: tuple[MissingQuote, ...] = ()
    # Taker fee per venue as a fraction of notional (0.004 = 40 bps), and where each came from.
    taker_fees: Mapping[str, Decimal] = field(default_factory=dict)
    fee_sources: Mapping[str, str] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)

    def by_symbol(self) -> dict[str, list[QuoteData]]:
        grouped: dict[str, list[QuoteData]] = {}
        for quote in self.quotes:
            grouped.setdefault(quote.symbol, []).append(quote)
        return grouped


@dataclass(frozen=True)
class Inventory:
    """What the bot's book holds at each venue, by asset: an instrument's symbol (``BTC-USD``: the base held, as
    the OMS books fills) and quote currencies (``USD``). An absent asset is held at zero: nothing to sell."""

    holdings: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)  # (venue, asset) -> quantity

    def held(self, venue: str, asset: str) -> Decimal:
        return self.holdings.get((venue, asset), Decimal(0))


@dataclass(frozen=True)
class PlannedLeg:
    """One leg of a planned intent, at the market venue the scan priced (the execution side maps it to the order
    venue of the bot's stage: the sim twin on paper). A limit at the quoted price protects the priced edge."""

    venue: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    limit_price: Decimal

    def as_dict(self) -> dict:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": str(self.quantity),
            "limit_price": str(self.limit_price),
        }


@dataclass(frozen=True)
class Opportunity:
    """One priced candidate (a row of arb_spreads): ``legs_key`` names it (e.g. ``coinbase>kraken``), ``numbers``
    holds its decimals by name, ``acted`` whether the plan is this one, ``why_not`` otherwise."""

    symbol: str
    legs_key: str
    numbers: Mapping[str, Decimal]
    venues: Mapping[str, str]  # role -> venue, e.g. {"buy": "coinbase", "sell": "kraken"}
    acted: bool = False
    why_not: str = ""

    def summary(self) -> dict:
        return {
            "symbol": self.symbol,
            "legs": self.legs_key,
            **self.venues,
            **{name: float(value) for name, value in self.numbers.items()},
            "acted": self.acted,
            "why_not": self.why_not,
        }


@dataclass(frozen=True)
class IntentPlan:
    """The one multi-leg intent a scan wants: its legs and the opportunity window that keys its idempotency (a
    rescan of the same opportunity in the same window names the same key and creates nothing)."""

    opportunity: Opportunity
    legs: tuple[PlannedLeg, ...]
    window_start: datetime
    failure_policy: str = "FLATTEN"

    def idempotency_scope(self) -> str:
        return f"{self.opportunity.symbol}:{self.opportunity.legs_key}:{self.window_start.isoformat()}"


@dataclass(frozen=True)
class ScanResult:
    opportunities: tuple[Opportunity, ...]
    plan: IntentPlan | None
    reason_code: str | None  # None with a plan; else a traces.ReasonCode value (NO_SIGNAL, DATA_STALE, ...)
    details: dict = field(default_factory=dict)
    best: Opportunity | None = None  # the best-priced opportunity, acted or not (its numbers go in the trace)


class QuoteStrategy(Strategy):
    """A strategy that scans quotes. Subclasses set ``name``, ``description``, ``params`` and implement ``scan``;
    ``market_kind`` names the snapshot the execution side must gather for it ("spot"; "funding" for scanners that
    read funding and basis)."""

    market_kind: str = "spot"

    def warmup_bars(self, params: dict[str, Any]) -> int:
        raise TypeError(f"{self.name} is a quote strategy: it scans venue quotes and reads no bars")

    def decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        raise TypeError(f"{self.name} is a quote strategy: scanner bots tick through execution.arbitrage")

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "kind": "quotes", "market": self.market_kind}

    def scan(self, params: dict[str, Any], market: MarketSnapshot, inventory: Inventory, now: datetime) -> ScanResult:
        raise NotImplementedError


def is_quote_strategy(strategy: Strategy) -> bool:
    return isinstance(strategy, QuoteStrategy)


def quote_strategy_names() -> list[str]:
    """Names of the registered quote strategies: the bar tick leaves their bots to the scanner path."""
    return [strategy.name for strategy in available_strategies() if is_quote_strategy(strategy)]


def bar_strategies() -> list[Strategy]:
    """The registered strategies that decide on bars (backtests, matrices, the bar tick), in name order."""
    return [strategy for strategy in available_strategies() if not is_quote_strategy(strategy)]
