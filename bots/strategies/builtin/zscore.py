"""The z-score mean reversion: enter at |z| >= entry_z against the move, exit once z is back within exit_z."""

from __future__ import annotations

from typing import Any

import numpy as np

from bots.strategies.base import Bars, Decision, ParamSpec, Strategy, paired, register_strategy
from bots.strategies.builtin.common import (
    SIZE,
    ALLOW_SHORT,
    _direction,
    _latch,
    _window_reductions,
    _hold_unless,
    _padded,
    _rolling_sum,
)


@register_strategy
class ZScoreMeanReversion(Strategy):
    name = "zscore_mean_reversion"
    description = (
        "Buy when the close is entry_z standard deviations below its lookback mean, sell short (if "
        "allowed) when as far above; exit once the z-score comes back within exit_z."
    )
    params = (
        ParamSpec(
            "lookback",
            int,
            20,
            "Bars in the mean and standard deviation (including the current bar).",
            minimum=3,
            maximum=5000,
        ),
        ParamSpec("entry_z", float, 2.0, "Absolute z-score that opens a position.", minimum=0.1, maximum=10),
        ParamSpec("exit_z", float, 0.5, "Absolute z-score within which a position is closed.", minimum=0, maximum=10),
        SIZE,
        ALLOW_SHORT,
    )

    def check(self, params: dict[str, Any]) -> dict[str, list[str]]:
        if params["exit_z"] >= params["entry_z"]:
            return {"exit_z": [f"Must be smaller than entry_z ({params['entry_z']})."]}
        return {}

    def warmup_bars(self, params: dict[str, Any]) -> int:
        return params["lookback"]

    def decide_many(self, param_sets, bars: Bars, positions) -> list[Decision]:
        """``decide`` for each set, the mean and standard deviation of each lookback computed once for every set
        that reads it, over the same closes ``_decide`` would."""
        moments: dict[tuple[int, int], tuple[float, float, float]] = {}
        decisions = []
        for params, position in paired(param_sets, positions):
            needed = self.warmup_bars(params)
            short = self.short_history(needed, bars)
            if short is not None:
                decisions.append(short)
                continue
            position = float(position)
            key = (needed, params["lookback"])
            if key not in moments:
                closes = bars.close[-needed:][-key[1] :]
                moments[key] = (float(np.mean(closes)), float(np.std(closes)), float(closes[-1]))
            mean, std, close = moments[key]
            if std == 0.0:
                decisions.append(Decision(position, "HOLD_NO_DISPERSION", {"close": close, "mean": mean, "std": std}))
                continue
            z = (close - mean) / std
            values = {"close": close, "mean": mean, "std": std, "zscore": z}
            entry_z, exit_z = params["entry_z"], params["exit_z"]
            if z <= -entry_z:
                decisions.append(Decision(params["size"], "LONG", values))
            elif z >= entry_z:
                target, reason = _direction(-1, params["size"], params["allow_short"])
                decisions.append(Decision(target, reason, values))
            elif position > 0 and z >= -exit_z:
                decisions.append(Decision(0.0, "EXIT_LONG", values))
            elif position < 0 and z <= exit_z:
                decisions.append(Decision(0.0, "EXIT_SHORT", values))
            else:
                decisions.append(Decision(position, "HOLD", values))
        return decisions

    def _decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        closes = bars.close[-params["lookback"] :]
        mean, std = float(np.mean(closes)), float(np.std(closes))
        close = float(closes[-1])
        if std == 0.0:
            return Decision(position, "HOLD_NO_DISPERSION", {"close": close, "mean": mean, "std": std})
        z = (close - mean) / std
        values = {"close": close, "mean": mean, "std": std, "zscore": z}
        if z <= -params["entry_z"]:
            return Decision(params["size"], "LONG", values)
        if z >= params["entry_z"]:
            target, reason = _direction(-1, params["size"], params["allow_short"])
            return Decision(target, reason, values)
        if position > 0 and z >= -params["exit_z"]:
            return Decision(0.0, "EXIT_LONG", values)
        if position < 0 and z <= params["exit_z"]:
            return Decision(0.0, "EXIT_SHORT", values)
        return Decision(position, "HOLD", values)

    def reference_targets(self, params: dict[str, Any], bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per side, ``_decide``'s cases in its order: an entry either way on every side, then the exit of the side
        the position is on; a window without dispersion (std 0) holds. The mean and std are np.mean / np.std of each
        bar's window and the z-score the same float operations ``_decide`` does, elementwise."""
        lookback, entry_z, exit_z = params["lookback"], params["entry_z"], params["exit_z"]
        n = len(bars)
        if n < lookback:
            return _padded(n, n, *(np.empty(0),) * 3)
        count = n - lookback + 1
        mean = _window_reductions(np.mean, bars.close, lookback, 0, count)
        std = _window_reductions(np.std, bars.close, lookback, 0, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (bars.close[lookback - 1 :] - mean) / std
        z[std == 0.0] = np.nan  # HOLD_NO_DISPERSION; a NaN z compares false with every threshold, as in _decide
        long = (z <= -entry_z, params["size"])
        short = (z >= entry_z, _direction(-1, params["size"], params["allow_short"])[0])
        return _padded(
            n,
            lookback - 1,
            _hold_unless(long, short),
            _hold_unless(long, short, (z >= -exit_z, 0.0)),
            _hold_unless(long, short, (z <= exit_z, 0.0)),
        )

    has_vectorized_form = True

    def vectorized_targets(self, params: dict[str, Any], bars: Bars) -> np.ndarray:
        """z-scores from rolling sums, then ``_latch``. Where a fast z-score lies within its error bound of
        a threshold (or the variance within its bound of zero, or anything is not finite), the exact window
        statistics ``_decide`` computes (np.mean, np.std of the window) replace it, so every comparison agrees."""
        lookback = params["lookback"]
        n = len(bars)
        targets = np.full(n, np.nan)
        if n < lookback:
            return targets
        entry_z, exit_z = params["entry_z"], params["exit_z"]
        z = _zscores(bars.close, lookback, (entry_z, exit_z))
        targets[lookback - 1 :] = _latch(
            z <= -entry_z,
            z >= entry_z,
            z >= -exit_z,
            z <= exit_z,
            size=params["size"],
            allow_short=params["allow_short"],
        )
        return targets


_EXACT_ROWS_ELEMENTS = 1 << 20  # window values copied at once for the exact recomputation


def _zscores(close: np.ndarray, lookback: int, thresholds: tuple[float, ...]) -> np.ndarray:
    """For each bar from lookback-1: the z-score ``_decide`` computes, NaN where its std is zero (the decision is
    HOLD_NO_DISPERSION, and NaN compares false with every threshold); ``thresholds`` are the magnitudes z is
    compared with, either sign.

    Fast form: mean and E[x²] from rolling sums. Their errors are bounded from the sums' lengths and the largest
    |close| (u = 2^-53 per operation, far over the textbook bound, covering np.std's own rounding too); a bar whose
    variance is within twice its bound of zero (a flat window: np.std may be 0 or a few ulps), or whose z-score is
    within its bound of a threshold, takes the exact form: np.mean and np.std of its window, as ``_decide``."""
    u = np.finfo(np.float64).eps / 2
    scale = float(np.max(np.abs(close), where=np.isfinite(close), initial=0.0))
    var_err = 16 * (3 * lookback + 8) * u * scale * scale
    mean_err = 16 * (lookback + 2) * u * scale
    mean = _rolling_sum(close, lookback)
    mean /= lookback
    var = _rolling_sum(close, lookback, square=True)
    var /= lookback
    var -= mean * mean
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(var)
        z = close[lookback - 1 :] - mean
        z /= std
        # Where var > 2 var_err: the exact std is at least std / sqrt(2) and differs from std by at most
        # var_err / std, so z is off by at most sqrt(2) (2 mean_err std + |z| var_err) / var, plus its own rounding.
        magnitude = np.abs(z)
        z_err = var_err * 1.5 / var
        z_err += 4 * u
        z_err *= magnitude
        z_err += 3 * mean_err / std
        near = ~(var > 2 * var_err)  # NaN too; elsewhere std > 0
        for threshold in thresholds:  # z within z_err of +t or -t: |z| within z_err of t
            distance = np.subtract(magnitude, threshold)
            near |= np.abs(distance, out=distance) <= z_err
    suspects = np.flatnonzero(near)
    if suspects.size:
        windows = np.lib.stride_tricks.sliding_window_view(close, lookback)
        step = max(1, _EXACT_ROWS_ELEMENTS // lookback)
        for lo in range(0, suspects.size, step):
            rows = suspects[lo : lo + step]
            # Row-wise over C-contiguous copies: each row reduces as np.mean / np.std of a slice does.
            values = windows[rows]
            exact_mean = np.mean(values, axis=1)
            exact_std = np.std(values, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                exact = (close[lookback - 1 :][rows] - exact_mean) / exact_std
            z[rows] = np.where(exact_std != 0.0, exact, np.nan)
    return z
