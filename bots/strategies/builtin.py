"""The shipped strategies: moving-average crossover, Donchian breakout, z-score mean reversion."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from bots.strategies.base import Bars, Decision, ParamSpec, Strategy, paired, register_strategy
from bots.strategies.windows import window_table

SIZE = ParamSpec("size", float, 1.0, "Position size in units when in the market.", minimum=1e-9)
ALLOW_SHORT = ParamSpec("allow_short", bool, False, "Take short positions on sell signals instead of going flat.")


def _direction(signal: int, size: float, allow_short: bool) -> tuple[float, str]:
    if signal > 0:
        return size, "LONG"
    if signal < 0 and allow_short:
        return -size, "SHORT"
    return 0.0, "FLAT"


def _latch(enter_long, enter_short, exit_long, exit_short, *, size: float, allow_short: bool) -> np.ndarray:
    """The target after each bar of an enter/exit state machine with complete fills (the position each decision
    sees is the previous target, flat before the first): an entry bar sets the target (long, or short / flat on a
    short entry); while long, an exit_long bar goes flat, while short an exit_short bar; any other bar holds.
    Entries take precedence over exits on the same bar, as in ``_decide``; a bar never enters both ways.

    So the target at bar i is long exactly when, of the bars up to i that enter either way or exit a long, the
    last one enters long (short likewise): a running maximum of bar indices per side, no loop."""
    bars = np.arange(len(enter_long))
    entries = enter_long | enter_short
    since = np.maximum.accumulate(np.where(entries | exit_long, bars, -1))
    held = np.where(enter_long[since] & (since >= 0), size, 0.0)
    if allow_short:
        since = np.maximum.accumulate(np.where(entries | exit_short, bars, -1))
        held[enter_short[since] & (since >= 0)] = -size
    return held


def _window_reductions(reduce, values: np.ndarray, length: int, first: int, count: int) -> np.ndarray:
    """``reduce`` (np.mean, np.std, np.max, np.min) of the ``count`` windows of ``length`` values starting at
    index ``first``, ``first + 1``, ...: each row reduces as ``reduce`` of that plain slice does, to the bit
    (``bots.strategies.windows.window_table``), so a reference form computes the same floats as ``_decide``."""
    return window_table(reduce, np.ascontiguousarray(values[first : first + length - 1 + count]), length)


def _hold_unless(*cases: tuple[np.ndarray, float]) -> np.ndarray:
    """Per bar, the target of the first case whose condition holds (conditions in ``_decide``'s order), NaN (hold)
    where none does."""
    target = np.full(len(cases[0][0]), np.nan)
    for condition, value in reversed(cases):
        target[condition] = value
    return target


def _padded(n: int, start: int, *sides: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each side's targets placed from bar ``start`` of a series of ``n`` bars (NaN before: never read)."""
    out = []
    for side in sides:
        full = np.full(n, np.nan)
        full[start:] = side
        out.append(full)
    return tuple(out)


class _SpanTables:
    """Reductions over doubling spans (1, 2, 4, ... values) of recently seen series, kept between calls.

    Every window length reads the same spans, and a matrix chunk runs all its parameter sets on the same bars, so
    after the chunk's first set only each window's own combination of spans is left to compute. An entry serves a
    series only while the series holds the values it was built from: they are compared with a copy on every use
    (one pass, where building the spans takes log2(window)), so an array changed in place or a new array at the
    same address is never answered from stale spans. Bounded by ``budget`` bytes, least recently used out first;
    a table larger than the budget is built for the call and not kept."""

    def __init__(self, budget: int):
        self._budget = budget
        self._entries: OrderedDict[tuple, tuple[np.ndarray, list[np.ndarray]]] = OrderedDict()
        self._lock = threading.Lock()

    def table(self, values: np.ndarray, ufunc, longest: int, *, square: bool = False) -> list[np.ndarray]:
        """``table[k][j]``: ``ufunc.reduce`` over the 2**k values from j (of values², if ``square``), for every k
        with 2**k <= ``longest``."""
        key = (ufunc.__name__, square, values.__array_interface__["data"][0], values.shape, values.strides)
        with self._lock:  # held while a table grows: two threads must not append the same span twice
            entry = self._entries.get(key)
            if entry is None or not np.array_equal(entry[0], values):  # a NaN never equals: built again
                snapshot = values.copy()
                entry = (snapshot, [snapshot * snapshot if square else snapshot])
            spans = entry[1]
            while 1 << len(spans) <= longest:
                span = 1 << (len(spans) - 1)
                spans.append(ufunc(spans[-1][:-span], spans[-1][span:]))
            if (len(spans) + 1) * values.nbytes <= self._budget:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while sum((len(t) + 1) * v.nbytes for v, t in self._entries.values()) > self._budget:
                    self._entries.popitem(last=False)
            else:
                self._entries.pop(key, None)
            return spans


_SPANS = _SpanTables(budget=64 << 20)


def _rolling_extremes(values: np.ndarray, windows: tuple[int, ...], ufunc) -> list[np.ndarray]:
    """For each window length: ``ufunc.reduce`` (np.maximum / np.minimum) over each run of that many values,
    for the runs ending at index window-1 .. n-1: two overlapping spans of the largest power of two within the
    window cover it (an extreme counts a value twice harmlessly). Exact, and NaN propagating as np.max / np.min."""
    n = len(values)
    spans = _SPANS.table(values, ufunc, max(windows))
    out = []
    for window in windows:
        k = window.bit_length() - 1
        extremes, span = spans[k], 1 << k
        out.append(ufunc(extremes[: n - window + 1], extremes[window - span : n - span + 1]))
    return out


def _rolling_sum(values: np.ndarray, window: int, *, square: bool = False) -> np.ndarray:
    """Sums (of values², if ``square``) over each window ending at index window-1 .. n-1: the spans of the window
    length's binary digits laid end to end, each a pairwise sum of its span. Every sum adds at most ``window``
    values in a tree of depth log2(window) + its digits, so its rounding error is at most that many ulps of the
    window's absolute sum however long the series (a running sum over the whole series has an error that grows
    with it)."""
    count = len(values) - window + 1
    total, offset = np.zeros(count), 0
    for k, sums in enumerate(_SPANS.table(values, np.add, window, square=square)):
        if window & (1 << k):
            total += sums[offset : offset + count]
            offset += 1 << k
    return total


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
