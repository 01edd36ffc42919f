"""Each shipped strategy's reference form (indicators computed once over the series, the target read by index) gives
``_decide``'s target at every bar for every side of the position, on real-shaped bars full of near-ties: flat
stretches (equal means, zero dispersion, closes equal to a channel), two-level windows whose z-score lands exactly on
a threshold, NaN prices. The engine reads a form only where it stands for the ``_decide`` in use."""

from decimal import Decimal

import numpy as np
import pytest

from backtests.engine import reference_form, run_reference, vectorizable
from bots.strategies import Bars, Decision, get_strategy
from bots.strategies.base import BAR_COLUMNS
from bots.strategies.builtin import DonchianBreakout
from execution.fill_model import FillModel
from tests.backtests.helpers import clustered_bars
from tests.backtests.test_reference_path import decide_bar_by_bar

CASES = [
    ("ma_crossover", {"fast": 10, "slow": 30}),
    ("ma_crossover", {"fast": 3, "slow": 7, "allow_short": True, "size": 2.5}),
    ("ma_crossover", {"fast": 1, "slow": 2, "allow_short": True}),
    ("ma_crossover", {"fast": 40, "slow": 600, "size": 0.3}),
    ("donchian_breakout", {"entry_lookback": 20, "exit_lookback": 10}),
    ("donchian_breakout", {"entry_lookback": 7, "exit_lookback": 7, "allow_short": True, "size": 3.0}),
    ("donchian_breakout", {"entry_lookback": 2, "exit_lookback": 1, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 20, "entry_z": 2.0, "exit_z": 0.5}),
    ("zscore_mean_reversion", {"lookback": 4, "entry_z": 1.0, "exit_z": 0.0, "allow_short": True}),
    ("zscore_mean_reversion", {"lookback": 6, "entry_z": 1.0, "exit_z": 0.5, "allow_short": True, "size": 0.7}),
    ("zscore_mean_reversion", {"lookback": 300, "entry_z": 1.2, "exit_z": 0.9}),
]


def two_level_bars(n: int) -> Bars:
    """Integer closes that switch between two levels in runs of two: windows of 4 or 6 hold the levels in equal
    numbers, so their mean, std and z-score are exact (|z| = 1.0 on the nose) and every comparison with a
    threshold of 1.0 is a tie; the channels tie the close too."""
    rng = np.random.default_rng(12)
    close = np.repeat(100.0 + 2.0 * rng.integers(0, 2, n // 2 + 1), 2)[:n]
    return Bars.from_columns(
        ts=np.arange(n).astype("datetime64[m]"), open=close, high=close, low=close, close=close, volume=np.full(n, 10.0)
    )


def with_nans(bars: Bars) -> Bars:
    columns = {c: getattr(bars, c).copy() for c in BAR_COLUMNS}
    for c in ("close", "high", "low"):
        columns[c][[400, 401, 1500]] = np.nan
    return Bars.from_columns(**columns)


SERIES = {
    "clustered": lambda: clustered_bars(2400, seed=21, tick=0.25, base=4000.0),
    "cents": lambda: clustered_bars(2400, seed=22, tick=0.01, base=101.37),
    "two_levels": lambda: two_level_bars(2400),
    "nans": lambda: with_nans(clustered_bars(2400, seed=23, tick=0.25, base=4000.0)),
}


@pytest.mark.parametrize("series", list(SERIES))
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_the_reference_form_gives_decides_target_at_every_bar_on_every_side(name, params, series):
    strategy = get_strategy(name)
    clean = strategy.validate(params)
    bars = SERIES[series]()
    warmup = strategy.warmup_bars(clean)
    size = clean["size"]
    sides = dict(zip((0.0, size, -size), reference_form(strategy, clean, bars)))
    odd = {0.37 * size: sides[size], -1.9 * size: sides[-size]}  # a hold returns these positions, not the size
    reasons = set()
    for i in range(warmup - 1, len(bars)):
        window = Bars(*(getattr(bars, c)[i + 1 - warmup : i + 1] for c in BAR_COLUMNS))
        for position, targets in {**sides, **odd}.items():
            decision = strategy.decide(clean, window, position)
            got = targets[i]
            assert (position if np.isnan(got) else got) == decision.target, (i, position, decision)
            assert np.isnan(got) == (decision.target == position and decision.reason.startswith("HOLD")), (
                i,
                position,
                decision,
            )
            reasons.add(decision.reason)
    assert len(reasons) >= 2, reasons  # the series reach more than one of the strategy's cases


def test_the_series_have_the_ties_the_forms_are_held_to():
    """Guards the test above from silently losing its near-ties if the series generator changes."""
    bars = two_level_bars(2400)
    windows = np.lib.stride_tricks.sliding_window_view(bars.close, 4)
    with np.errstate(invalid="ignore"):  # the windows of one level have no dispersion
        z = (windows[:, -1] - windows.mean(axis=1)) / windows.std(axis=1)
    assert np.count_nonzero(np.abs(z) == 1.0) > 300
    flat = clustered_bars(2400, seed=21, tick=0.25, base=4000.0)
    means = np.lib.stride_tricks.sliding_window_view(flat.close, 30)
    assert np.count_nonzero(means[:, -10:].mean(axis=1) == means.mean(axis=1)) > 50
    highs = np.lib.stride_tricks.sliding_window_view(flat.high[:-1], 20).max(axis=1)
    assert np.count_nonzero(flat.close[20:] == highs) > 100


class ChangedDecide(DonchianBreakout):
    """A subclass with its own rule (not registered): the parent's reference form no longer describes it."""

    name = "test_changed_donchian"

    def _decide(self, params, bars, position):
        return Decision(params["size"] if bars.close[-1] > bars.close[-2] else 0.0, "UP_CLOSE")


class LongerWarmup(DonchianBreakout):
    name = "test_longer_warmup_donchian"

    def warmup_bars(self, params):
        return params["entry_lookback"] + 5


def test_a_subclass_or_instance_that_changes_the_rule_or_the_warmup_is_decided_bar_by_bar():
    bars = clustered_bars(2000, seed=24, tick=0.25, base=4000.0)
    kwargs = dict(model=FillModel(), tick_size=Decimal("0.25"), multiplier=Decimal("1"), capital=1e5)
    assert reference_form(get_strategy("donchian_breakout"), DonchianBreakout().validate({}), bars) is not None
    patched = DonchianBreakout()  # an instance given its own rule (as a test double would be)
    patched._decide = ChangedDecide()._decide
    for strategy in (ChangedDecide(), LongerWarmup(), patched):
        clean = strategy.validate({})
        assert reference_form(strategy, clean, bars) is None
        fast = run_reference(strategy, clean, bars, **kwargs)
        slow = decide_bar_by_bar(strategy, clean, bars, **kwargs)
        assert len(slow.fills) > 20 and fast.fills == slow.fills and fast.orders == slow.orders


def test_a_subclass_that_changes_the_rule_loses_its_parents_vectorized_and_batched_forms_too():
    """The vectorized path (backtests, matrices) and decide_many (the live tick) are forms of the parent's rule as
    much as the reference form: a subclass with its own rule backtests bar by bar and decides one by one."""
    bars = clustered_bars(2000, seed=24, tick=0.25, base=4000.0)
    for strategy in (ChangedDecide(), LongerWarmup()):
        clean = strategy.validate({})
        assert not vectorizable(strategy, FillModel(), Decimal("0.25"))
        sets, positions = [clean, clean], [0.0, 1.0]
        for end in (15, 25, 400, 1999):
            window = Bars(**{column: getattr(bars, column)[: end + 1] for column in BAR_COLUMNS})
            assert strategy.decide_many(sets, window, positions) == [
                strategy.decide(params, window, position) for params, position in zip(sets, positions)
            ]
    patched = DonchianBreakout()
    patched._decide = ChangedDecide()._decide
    assert not vectorizable(patched, FillModel(), Decimal("0.25"))
    assert vectorizable(DonchianBreakout(), FillModel(), Decimal("0.25"))
