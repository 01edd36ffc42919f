"""The moving-average crossover: long while the fast mean of closes is above the slow one."""

from __future__ import annotations

from typing import Any

import numpy as np

from bots.strategies.base import Bars, Decision, ParamSpec, Strategy, paired, register_strategy
from bots.strategies.builtin.common import SIZE, ALLOW_SHORT, _direction, _window_reductions, _hold_unless, _padded


@register_strategy
class MovingAverageCrossover(Strategy):
    name = "ma_crossover"
    description = "Long while the fast simple moving average of closes is above the slow one; flat (or short) below."
    params = (
        ParamSpec("fast", int, 10, "Bars in the fast moving average.", minimum=1, maximum=1000),
        ParamSpec("slow", int, 30, "Bars in the slow moving average.", minimum=2, maximum=5000),
        SIZE,
        ALLOW_SHORT,
    )

    def check(self, params: dict[str, Any]) -> dict[str, list[str]]:
        if params["fast"] >= params["slow"]:
            return {"fast": [f"Must be smaller than slow ({params['slow']})."]}
        return {}

    def warmup_bars(self, params: dict[str, Any]) -> int:
        return params["slow"]

    def decide_many(self, param_sets, bars: Bars, positions) -> list[Decision]:
        """``decide`` for each set, each window mean computed once for every set that reads it: ``np.mean`` of the
        same closes ``_decide`` would average (its window's last n), so the floats are the same bits."""
        means: dict[tuple[int, int], float] = {}
        decisions = []
        for params, position in paired(param_sets, positions):
            needed = self.warmup_bars(params)
            short = self.short_history(needed, bars)
            if short is not None:
                decisions.append(short)
                continue
            position = float(position)
            fast_key, slow_key = (needed, params["fast"]), (needed, params["slow"])
            for key in (fast_key, slow_key):
                if key not in means:
                    means[key] = float(np.mean(bars.close[-needed:][-key[1] :]))
            fast_ma, slow_ma = means[fast_key], means[slow_key]
            signal = 1 if fast_ma > slow_ma else (-1 if fast_ma < slow_ma else 0)
            if signal == 0:
                decisions.append(Decision(position, "HOLD", {"fast_ma": fast_ma, "slow_ma": slow_ma}))
                continue
            target, reason = _direction(signal, params["size"], params["allow_short"])
            decisions.append(Decision(target, reason, {"fast_ma": fast_ma, "slow_ma": slow_ma}))
        return decisions

    def _decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        fast_ma = float(np.mean(bars.close[-params["fast"] :]))
        slow_ma = float(np.mean(bars.close[-params["slow"] :]))
        signal = 1 if fast_ma > slow_ma else (-1 if fast_ma < slow_ma else 0)
        if signal == 0:
            return Decision(position, "HOLD", {"fast_ma": fast_ma, "slow_ma": slow_ma})
        target, reason = _direction(signal, params["size"], params["allow_short"])
        return Decision(target, reason, {"fast_ma": fast_ma, "slow_ma": slow_ma})

    def reference_targets(self, params: dict[str, Any], bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same target on every side: long when the fast mean is above the slow one, short (or flat) below, a
        hold on a tie or a NaN mean; both means are np.mean of each bar's window, as ``_decide`` takes them."""
        close, fast, slow = bars.close, params["fast"], params["slow"]
        n = len(close)
        if n < slow:
            targets = np.full(n, np.nan)
            return targets, targets, targets
        count = n - slow + 1
        fast_ma = _window_reductions(np.mean, close, fast, slow - fast, count)
        slow_ma = _window_reductions(np.mean, close, slow, 0, count)
        size = params["size"]
        (targets,) = _padded(
            n,
            slow - 1,
            _hold_unless(
                (fast_ma > slow_ma, size), (fast_ma < slow_ma, _direction(-1, size, params["allow_short"])[0])
            ),
        )
        return targets, targets, targets

    has_vectorized_form = True

    def vectorized_targets(self, params: dict[str, Any], bars: Bars) -> np.ndarray:
        """Rolling means by cumulative sums; where the two are too close for the sums' rounding to call the sign,
        the exact window means ``_decide`` computes settle it, so the signs agree bar for bar."""
        close, fast, slow = bars.close, params["fast"], params["slow"]
        n = len(close)
        targets = np.full(n, np.nan)
        if n < slow:
            return targets
        finite = np.isfinite(close)
        complete = bool(finite.all())
        # A NaN or infinite close would poison every later running sum: sum it as 0 and settle each window that
        # holds it exactly below, as _decide averages it (a NaN mean compares false both ways: HOLD).
        sums = np.concatenate(([0.0], np.cumsum(close if complete else np.where(finite, close, 0.0))))
        window_end = sums[slow:]  # slices, not index arrays: bar i's window sums end at sums[i + 1]
        fast_ma = (window_end - sums[slow - fast : n + 1 - fast]) / fast
        slow_ma = (window_end - sums[: n + 1 - slow]) / slow
        diff = np.subtract(fast_ma, slow_ma, out=fast_ma)
        # One bound for the whole series, at least each bar's own (1e-9 of the mean, 1e-12 of the running sum):
        # a wider net only sends more bars to the exact check below.
        tolerance = 1e-9 * max(float(np.abs(slow_ma).max()), 1.0) + 1e-12 * float(np.abs(sums).max())
        close_call = np.abs(diff) <= tolerance
        if not complete:
            bad = np.concatenate(([0], np.cumsum(~finite)))
            close_call |= (bad[slow:] - bad[: n + 1 - slow]) > 0
        close_calls = np.flatnonzero(close_call)
        if close_calls.size:
            # Row-wise means over sliding windows reduce each contiguous row as np.mean of a slice does.
            windows = np.lib.stride_tricks.sliding_window_view(close, slow)[close_calls]
            exact_fast = np.mean(windows[:, slow - fast :], axis=1)
            exact_slow = np.mean(windows, axis=1)
            diff[close_calls] = exact_fast - exact_slow
        size = params["size"]
        short = -size if params["allow_short"] else 0.0
        held = np.where(diff > 0, size, short)
        # A tie (equal means) is HOLD: it keeps the previous target (the position), flat before the first signal.
        hold = diff == 0
        if not complete:  # a NaN mean: neither comparison of _decide holds, so HOLD
            hold |= np.isnan(diff)
        ties = np.flatnonzero(hold)
        if ties.size > 10_000:  # a Python pass over a few ties beats four passes over the series
            decided = np.where(hold, -1, np.arange(len(held)))
            last = np.maximum.accumulate(decided)
            held = np.where(last >= 0, held[np.maximum(last, 0)], 0.0)
        else:
            for i in ties.tolist():
                held[i] = held[i - 1] if i else 0.0
        targets[slow - 1 :] = held
        return targets
