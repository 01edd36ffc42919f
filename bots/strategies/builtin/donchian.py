"""The Donchian breakout: enter on a close beyond the previous bars' channel, exit on the opposite one."""

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
    _rolling_extremes,
)


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

    def reference_targets(self, params: dict[str, Any], bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per side, ``_decide``'s cases in its order: a breakout either way on every side, then the exit of the
        side the position is on; the channels are np.max / np.min of each bar's previous bars, as ``_decide``
        takes them."""
        entry, exit_ = params["entry_lookback"], params["exit_lookback"]
        n = len(bars)
        if n < entry + 1:
            return _padded(n, n, *(np.empty(0),) * 3)
        count = n - entry  # bars entry .. n-1; bar i reads the channels of bars i-lookback .. i-1
        close = bars.close[entry:]
        entry_high = _window_reductions(np.max, bars.high, entry, 0, count)
        entry_low = _window_reductions(np.min, bars.low, entry, 0, count)
        exit_high = _window_reductions(np.max, bars.high, exit_, entry - exit_, count)
        exit_low = _window_reductions(np.min, bars.low, exit_, entry - exit_, count)
        up, down = (
            (close > entry_high, params["size"]),
            (close < entry_low, _direction(-1, params["size"], params["allow_short"])[0]),
        )
        return _padded(
            n,
            entry,
            _hold_unless(up, down),
            _hold_unless(up, down, (close < exit_low, 0.0)),
            _hold_unless(up, down, (close > exit_high, 0.0)),
        )

    has_vectorized_form = True

    def vectorized_targets(self, params: dict[str, Any], bars: Bars) -> np.ndarray:
        """Channels by exact rolling max/min of the previous bars; the position-dependent exits through
        ``_latch``. The exit channel lies inside the entry channel (exit_lookback <= entry_lookback), but the
        precedence is kept explicitly anyway."""
        entry, exit_ = params["entry_lookback"], params["exit_lookback"]
        n = len(bars)
        targets = np.full(n, np.nan)
        if n < entry + 1:
            return targets
        close = bars.close[entry:]  # bar i = entry + k decides on close[i] against bars i-lookback .. i-1
        entry_high, exit_high = _rolling_extremes(bars.high[: n - 1], (entry, exit_), np.maximum)
        entry_low, exit_low = _rolling_extremes(bars.low[: n - 1], (entry, exit_), np.minimum)
        exit_high, exit_low = exit_high[entry - exit_ :], exit_low[entry - exit_ :]
        up = close > entry_high
        down = ~up & (close < entry_low)
        targets[entry:] = _latch(
            up, down, close < exit_low, close > exit_high, size=params["size"], allow_short=params["allow_short"]
        )
        return targets
