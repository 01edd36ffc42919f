"""``decide_many`` equals ``decide`` one by one: same targets, reasons and values (to the bit) for every shipped
strategy, over many parameter sets, positions (flat, long, short, odd sizes) and histories (short ones included),
and for a strategy with no override of its own."""

import numpy as np
import pytest

from bots.strategies import Bars, Decision, ParamSpec, Strategy, bar_strategies, get_strategy
from tests.backtests.helpers import memory_bars

PARAMETER_SETS = {
    "ma_crossover": [
        {"fast": f, "slow": s, "size": size, "allow_short": short}
        for f, s in [(2, 5), (5, 20), (10, 30), (5, 30), (29, 30), (3, 60)]
        for size, short in [(1.0, False), (2.5, True)]
    ],
    "donchian_breakout": [
        {"entry_lookback": e, "exit_lookback": x, "size": size, "allow_short": short}
        for e, x in [(2, 1), (5, 5), (20, 10), (20, 3), (55, 20)]
        for size, short in [(1.0, False), (0.3, True)]
    ],
    "zscore_mean_reversion": [
        {"lookback": n, "entry_z": e, "exit_z": x, "size": size, "allow_short": short}
        for n, e, x in [(3, 0.5, 0.1), (20, 2.0, 0.5), (20, 1.0, 0.0), (45, 1.5, 0.3)]
        for size, short in [(1.0, False), (7.0, True)]
    ],
}


def _histories():
    walk = memory_bars(400, seed=31)
    flat = Bars.from_columns(
        ts=walk.ts[:80],
        open=np.full(80, 50.0),
        high=np.full(80, 50.25),
        low=np.full(80, 49.75),
        close=np.full(80, 50.0),
        volume=np.full(80, 10.0),
    )
    ends = [1, 4, 21, 30, 60, 150, 399, 400]
    return [
        Bars(*(getattr(walk, c)[:end] for c in ("ts", "open", "high", "low", "close", "volume"))) for end in ends
    ] + [flat]


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
def test_decide_many_equals_deciding_one_by_one(name):
    strategy = get_strategy(name)
    assert type(strategy).decide_many is not Strategy.decide_many, "every shipped strategy shares work"
    sets = [strategy.validate(p) for p in PARAMETER_SETS[name]]
    kinds = set()
    for bars in _histories():
        for positions in ([0.0] * len(sets), [p["size"] for p in sets], [-p["size"] for p in sets]):
            positions = [pos if k % 5 else pos + 0.7 for k, pos in enumerate(positions)]  # some odd positions
            together = strategy.decide_many(sets, bars, positions)
            alone = [strategy.decide(p, bars, pos) for p, pos in zip(sets, positions)]
            assert together == alone
            kinds.update(d.reason for d in alone)
    assert "INSUFFICIENT_HISTORY" in kinds and len(kinds) >= 4, kinds


class OnlyDecide(Strategy):
    name = "test_only_decide"
    params = (ParamSpec("n", int, 3, "window"),)

    def warmup_bars(self, params):
        return params["n"]

    def _decide(self, params, bars, position):
        return Decision(float(bars.close[-1] > bars.close[0]), "UP_OR_NOT", {"first": float(bars.close[0])})


def test_the_default_decides_one_by_one_for_a_strategy_without_an_override():
    strategy = OnlyDecide()
    bars = memory_bars(10, seed=1)
    sets = [{"n": 3}, {"n": 11}, {"n": 10}]
    assert strategy.decide_many(sets, bars, [0.0, 1.0, 2.0]) == [
        strategy.decide(p, bars, pos) for p, pos in zip(sets, [0.0, 1.0, 2.0])
    ]
    assert strategy.decide_many(sets, bars, [0.0, 1.0, 2.0])[1].target is None


@pytest.mark.parametrize("strategy", [*bar_strategies(), OnlyDecide()], ids=lambda s: s.name)
def test_a_position_per_parameter_set_or_an_error(strategy):
    with pytest.raises(ValueError, match="2 parameter sets but 1 positions"):
        strategy.decide_many([strategy.validate({}), strategy.validate({})], memory_bars(5), [0.0])
