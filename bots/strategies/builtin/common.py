"""What the shipped strategies share: their common parameters, the latch of enter/exit signals, and rolling
reductions over doubling spans kept between calls (a matrix chunk runs all its parameter sets on the same bars)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from bots.strategies.base import ParamSpec
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
