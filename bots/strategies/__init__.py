"""The strategy registry: pure, deterministic trading decisions shared by the live tick and the backtest engine.

A strategy is a function of (parameters, bar history, current position) and nothing else: no clock, no database,
no randomness. The live tick (execution) and the backtest engine (backtests) call the same ``decide``, so a
backtest and a replay of the same bars give the same decisions (DESIGN.md invariant 8).

API::

    from bots.strategies import Bars, get_strategy, available_strategies, StrategyParameterError

    strategy = get_strategy("ma_crossover")          # UnknownStrategy (a KeyError) if not registered
    params = strategy.validate({"fast": 10})         # defaults filled in; StrategyParameterError names each field
    bars = Bars.from_columns(ts=..., open=..., high=..., low=..., close=..., volume=...)  # oldest first
    decision = strategy.decide(params, bars, position=0.0)
    decisions = strategy.decide_many([params, other], bars, [0.0, 1.0])  # each equal to decide(); the tick batches
    decision.target      # signed target position (units), or None when there is not enough history
    decision.values      # named floats that explain the decision (moving averages, channel, z-score, ...)
    decision.reason      # short machine-readable reason: "LONG", "FLAT", "HOLD", "INSUFFICIENT_HISTORY", ...
    strategy.warmup_bars(params)                     # bars needed before decide() can return a target
    strategy.parameters_hash(params)                 # stable sha256 of (strategy name, validated parameters)
    strategy.schema()                                # JSON-able parameter schema for the API and the UI

``decide`` expects validated parameters and bars up to and including the bar being decided on; it looks only at
the last ``warmup_bars`` bars, so a caller may pass a longer history. Positions and targets are signed quantities
(positive long, negative short).
"""

from bots.strategies.base import (
    Bars,
    Decision,
    ParamSpec,
    Strategy,
    StrategyParameterError,
    UnknownStrategy,
    available_strategies,
    get_strategy,
    register_strategy,
)
from bots.strategies import builtin, funding, spot_arb  # noqa: F401  (registers the shipped strategies)
from bots.strategies.quotes import (
    Inventory,
    IntentPlan,
    MarketSnapshot,
    MissingQuote,
    Opportunity,
    PlannedLeg,
    QuoteData,
    QuoteStrategy,
    ScanResult,
    bar_strategies,
    is_quote_strategy,
    quote_strategy_names,
)

__all__ = [
    "Bars",
    "Decision",
    "ParamSpec",
    "Strategy",
    "StrategyParameterError",
    "UnknownStrategy",
    "available_strategies",
    "bar_strategies",
    "get_strategy",
    "register_strategy",
    "Inventory",
    "IntentPlan",
    "MarketSnapshot",
    "MissingQuote",
    "Opportunity",
    "PlannedLeg",
    "QuoteData",
    "QuoteStrategy",
    "ScanResult",
    "is_quote_strategy",
    "quote_strategy_names",
]
