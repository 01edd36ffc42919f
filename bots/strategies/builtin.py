"""The shipped strategies: moving-average crossover, Donchian breakout, z-score mean reversion."""

from __future__ import annotations

from typing import Any

import numpy as np

from bots.strategies.base import Bars, Decision, ParamSpec, Strategy, paired, register_strategy

SIZE = ParamSpec("size", float, 1.0, "Position size in units when in the market.", minimum=1e-9)
ALLOW_SHORT = ParamSpec("allow_short", bool, False, "Take short positions on sell signals instead of going flat.")


def _direction(signal: int, size: float, allow_short: bool) -> tuple[float, str]:
    if signal > 0:
        return size, "LONG"
    if signal < 0 and allow_short:
        return -size, "SHORT"
    return 0.0, "FLAT"


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

    has_vectorized_form = True

    def vectorized_targets(self, params: dict[str, Any], bars: Bars) -> np.ndarray:
        """Rolling means by cumulative sums; where the two are too close for the sums' rounding to call the sign,
        the exact window means ``_decide`` computes settle it, so the signs agree bar for bar."""
        close, fast, slow = bars.close, params["fast"], params["slow"]
        n = len(close)
        targets = np.full(n, np.nan)
        if n < slow:
            return targets
        sums = np.concatenate(([0.0], np.cumsum(close)))
        window_end = sums[slow:]  # slices, not index arrays: bar i's window sums end at sums[i + 1]
        fast_ma = (window_end - sums[slow - fast : n + 1 - fast]) / fast
        slow_ma = (window_end - sums[: n + 1 - slow]) / slow
        diff = np.subtract(fast_ma, slow_ma, out=fast_ma)
        # One bound for the whole series, at least each bar's own (1e-9 of the mean, 1e-12 of the running sum):
        # a wider net only sends more bars to the exact check below.
        tolerance = 1e-9 * max(float(np.abs(slow_ma).max()), 1.0) + 1e-12 * float(np.abs(sums).max())
        close_calls = np.flatnonzero(np.abs(diff) <= tolerance)
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
        if not np.isfinite(sums[-1]):  # a NaN close: neither comparison of _decide holds, so HOLD
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


@register_strategy
class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    description = (
        "Enter when the close breaks out of the highest high / lowest low of the previous entry_lookback "
        "bars; exit when it crosses the opposite channel of the previous exit_lookback bars."
    )
    params = (
        ParamSpec(
            "entry_lookback", int, 20, "Bars in the entry channel (excluding the current bar).", minimum=2, maximum=1000
        ),
        ParamSpec(
            "exit_lookback", int, 10, "Bars in the exit channel (excluding the current bar).", minimum=1, maximum=1000
        ),
        SIZE,
        ALLOW_SHORT,
    )

    def check(self, params: dict[str, Any]) -> dict[str, list[str]]:
        if params["exit_lookback"] > params["entry_lookback"]:
            return {"exit_lookback": [f"Must not exceed entry_lookback ({params['entry_lookback']})."]}
        return {}

    def warmup_bars(self, params: dict[str, Any]) -> int:
        return params["entry_lookback"] + 1

    def decide_many(self, param_sets, bars: Bars, positions) -> list[Decision]:
        """``decide`` for each set, each channel (highest high, lowest low of the previous n bars) computed once
        for every set that reads it, from the same bars ``_decide`` would read."""
        channels: dict[tuple[int, int], tuple[float, float]] = {}

        def channel(needed: int, lookback: int) -> tuple[float, float]:
            key = (needed, lookback)
            if key not in channels:
                channels[key] = (
                    float(np.max(bars.high[-needed:][-lookback - 1 : -1])),
                    float(np.min(bars.low[-needed:][-lookback - 1 : -1])),
                )
            return channels[key]

        decisions = []
        for params, position in paired(param_sets, positions):
            needed = self.warmup_bars(params)
            short = self.short_history(needed, bars)
            if short is not None:
                decisions.append(short)
                continue
            position = float(position)
            close = float(bars.close[-1])
            entry_high, entry_low = channel(needed, params["entry_lookback"])
            exit_high, exit_low = channel(needed, params["exit_lookback"])
            values = {
                "close": close,
                "entry_high": entry_high,
                "entry_low": entry_low,
                "exit_high": exit_high,
                "exit_low": exit_low,
            }
            size, allow_short = params["size"], params["allow_short"]
            if close > entry_high:
                decisions.append(Decision(size, "BREAKOUT_UP", values))
            elif close < entry_low:
                target, reason = _direction(-1, size, allow_short)
                decisions.append(Decision(target, "BREAKOUT_DOWN" if target else reason, values))
            elif position > 0 and close < exit_low:
                decisions.append(Decision(0.0, "EXIT_LONG", values))
            elif position < 0 and close > exit_high:
                decisions.append(Decision(0.0, "EXIT_SHORT", values))
            else:
                decisions.append(Decision(position, "HOLD", values))
        return decisions

    def _decide(self, params: dict[str, Any], bars: Bars, position: float) -> Decision:
        close = float(bars.close[-1])
        entry, exit_ = params["entry_lookback"], params["exit_lookback"]
        values = {
            "close": close,
            "entry_high": float(np.max(bars.high[-entry - 1 : -1])),
            "entry_low": float(np.min(bars.low[-entry - 1 : -1])),
            "exit_high": float(np.max(bars.high[-exit_ - 1 : -1])),
            "exit_low": float(np.min(bars.low[-exit_ - 1 : -1])),
        }
        size, allow_short = params["size"], params["allow_short"]
        if close > values["entry_high"]:
            return Decision(size, "BREAKOUT_UP", values)
        if close < values["entry_low"]:
            target, reason = _direction(-1, size, allow_short)
            return Decision(target, "BREAKOUT_DOWN" if target else reason, values)
        if position > 0 and close < values["exit_low"]:
            return Decision(0.0, "EXIT_LONG", values)
        if position < 0 and close > values["exit_high"]:
            return Decision(0.0, "EXIT_SHORT", values)
        return Decision(position, "HOLD", values)


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
