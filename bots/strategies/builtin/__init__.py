"""The shipped strategies: moving-average crossover, Donchian breakout, z-score mean reversion (one module each;
``common`` holds what they share). Importing the package registers all three."""

from bots.strategies.builtin.common import _SPANS, _latch, _rolling_extremes, _rolling_sum
from bots.strategies.builtin.donchian import DonchianBreakout
from bots.strategies.builtin.ma_crossover import MovingAverageCrossover
from bots.strategies.builtin.zscore import ZScoreMeanReversion, _zscores

__all__ = [
    "DonchianBreakout",
    "MovingAverageCrossover",
    "ZScoreMeanReversion",
    "_SPANS",
    "_latch",
    "_rolling_extremes",
    "_rolling_sum",
    "_zscores",
]
