"""The strategy registry: pure, deterministic, validated parameters that name the field."""

import numpy as np
import pytest

from bots.strategies import Bars, StrategyParameterError, UnknownStrategy, available_strategies, get_strategy


def bars_from_closes(closes, spread=0.5):
    closes = np.asarray(closes, dtype=float)
    return Bars.from_columns(
        ts=np.arange(len(closes)),
        open=closes,
        high=closes + spread,
        low=closes - spread,
        close=closes,
        volume=np.full(len(closes), 100.0),
    )


def test_registry_ships_the_three_bar_strategies_and_the_spot_and_funding_arbitrage_scanners():
    assert [s.name for s in available_strategies()] == [
        "donchian_breakout",
        "funding_arbitrage",
        "ma_crossover",
        "spot_arbitrage",
        "zscore_mean_reversion",
    ]
    with pytest.raises(UnknownStrategy):
        get_strategy("martingale")


def test_validation_fills_defaults_and_names_each_bad_field():
    strategy = get_strategy("ma_crossover")
    assert strategy.validate({}) == {"fast": 10, "slow": 30, "size": 1.0, "allow_short": False}
    with pytest.raises(StrategyParameterError) as exc:
        strategy.validate({"fast": "ten", "size": -1, "leverage": 5})
    assert set(exc.value.errors) == {"fast", "size", "leverage"}
    with pytest.raises(StrategyParameterError) as exc:
        strategy.validate({"fast": 30, "slow": 10})
    assert list(exc.value.errors) == ["fast"]
    with pytest.raises(StrategyParameterError) as exc:
        get_strategy("zscore_mean_reversion").validate({"entry_z": 1.0, "exit_z": 1.5})
    assert list(exc.value.errors) == ["exit_z"]


def test_parameters_hash_is_stable_and_sensitive():
    strategy = get_strategy("ma_crossover")
    assert strategy.parameters_hash({"fast": 5}) == strategy.parameters_hash({"fast": 5.0, "slow": 30})
    assert strategy.parameters_hash({"fast": 5}) != strategy.parameters_hash({"fast": 6})


def test_ma_crossover_goes_long_on_uptrend_and_flat_on_downtrend():
    strategy = get_strategy("ma_crossover")
    params = strategy.validate({"fast": 3, "slow": 6})
    up = strategy.decide(params, bars_from_closes(range(1, 11)), position=0)
    assert (up.target, up.reason) == (1.0, "LONG")
    assert up.values == {"fast_ma": 9.0, "slow_ma": 7.5}
    down = strategy.decide(params, bars_from_closes(range(10, 0, -1)), position=1)
    assert (down.target, down.reason) == (0.0, "FLAT")
    short = strategy.decide(
        strategy.validate({"fast": 3, "slow": 6, "allow_short": True}), bars_from_closes(range(10, 0, -1)), position=0
    )
    assert short.target == -1.0


def test_not_enough_history_is_no_decision_not_flat():
    strategy = get_strategy("ma_crossover")
    decision = strategy.decide(strategy.validate({"fast": 3, "slow": 6}), bars_from_closes([1, 2, 3]), position=1)
    assert decision.target is None
    assert decision.reason == "INSUFFICIENT_HISTORY"
    assert decision.values == {"bars_needed": 6.0, "bars_available": 3.0}


def test_donchian_breaks_out_and_exits_on_the_exit_channel():
    strategy = get_strategy("donchian_breakout")
    params = strategy.validate({"entry_lookback": 5, "exit_lookback": 2})
    breakout = strategy.decide(params, bars_from_closes([10, 10, 10, 10, 10, 12]), position=0)
    assert (breakout.target, breakout.reason) == (1.0, "BREAKOUT_UP")
    assert breakout.values["entry_high"] == 10.5
    holding = strategy.decide(params, bars_from_closes([10, 10, 10, 12, 12, 11.8]), position=1)
    assert (holding.target, holding.reason) == (1.0, "HOLD")
    exit_ = strategy.decide(params, bars_from_closes([10, 10, 12, 12, 12, 11.0]), position=1)
    assert (exit_.target, exit_.reason) == (0.0, "EXIT_LONG")


def test_zscore_buys_the_dip_and_exits_near_the_mean():
    strategy = get_strategy("zscore_mean_reversion")
    params = strategy.validate({"lookback": 10, "entry_z": 2.0, "exit_z": 0.5})
    dip = strategy.decide(params, bars_from_closes([100] * 9 + [90]), position=0)
    assert (dip.target, dip.reason) == (1.0, "LONG")
    assert dip.values["zscore"] == pytest.approx(-3.0)
    back = strategy.decide(params, bars_from_closes([100, 101, 99, 100, 101, 99, 100, 101, 99, 100]), position=1)
    assert (back.target, back.reason) == (0.0, "EXIT_LONG")
    flat_prices = strategy.decide(params, bars_from_closes([100] * 10), position=0)
    assert flat_prices.reason == "HOLD_NO_DISPERSION"


@pytest.mark.parametrize("name", ["ma_crossover", "donchian_breakout", "zscore_mean_reversion"])
def test_decisions_are_deterministic_and_use_only_the_window(name):
    strategy = get_strategy(name)
    params = strategy.validate({})
    rng = np.random.default_rng(7)
    closes = 100 + np.cumsum(rng.normal(0, 1, 500))
    bars = bars_from_closes(closes)
    first = [strategy.decide(params, bars_from_closes(closes[: i + 1]), 0.0) for i in range(100, 500, 37)]
    again = [strategy.decide(params, bars_from_closes(closes[: i + 1]), 0.0) for i in range(100, 500, 37)]
    assert first == again
    window = strategy.warmup_bars(params)
    assert strategy.decide(params, bars, 0.0) == strategy.decide(params, bars_from_closes(closes[-window:]), 0.0)


def test_decision_init_is_the_dataclass_one():
    """Decision writes its own __init__ (speed); it must behave as the generated one: same fields, keywords, a fresh
    dict per default, an explicit value kept as given (None too), frozen and equal by value."""
    import dataclasses

    from bots.strategies import Decision

    a, b = Decision(1.0, "LONG"), Decision(target=1.0, reason="LONG")
    assert a == b and a.values == {} and a.values is not b.values
    values = {"x": 1.0}
    assert Decision(0.0, "FLAT", values).values is values and Decision(None, "X", None).values is None
    assert [f.name for f in dataclasses.fields(Decision)] == ["target", "reason", "values"]
    assert dataclasses.replace(a, reason="FLAT") == Decision(1.0, "FLAT")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.target = 2.0
    with pytest.raises(TypeError):
        Decision(1.0)
