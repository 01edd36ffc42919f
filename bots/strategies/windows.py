"""Bar windows for the reference backtest: each bar's window of one long series, and its reductions read by index.

The reference path (``backtests.engine.run_reference``) calls a strategy's ``_decide`` once per bar on the last
``warmup_bars`` bars. Most of that time was not the strategy's rule but numpy's per-call overhead on tiny arrays:
``np.mean`` of ten closes costs more than the rest of a bar. Here a window's columns are views of the series (the
same numbers ``decide`` would slice) of a subclass whose reductions find their place in the series, and ``np.mean``,
``np.std`` (ddof 0), ``np.sum``, ``np.max`` and ``np.min`` of such a view (or of a plain slice of it) read one
entry of a table computed once over the whole series for that window length (the sliding-window reduction, which
reduces each row exactly as the reduction of that slice does: ``tests/bots/test_strategy_windows.py`` holds it to
the bit). Anything else computes as on any array. Only lengths a run asks for often get a table, and only a few.
"""

from __future__ import annotations

import numpy as np

from bots.strategies.base import Bars

_REDUCTIONS = {"mean": np.mean, "std": np.std, "sum": np.sum, "max": np.max, "min": np.min}
TABLE_AFTER = 64  # reads of one (reduction, length) before its table is built: a rare length never pays for one
MAX_TABLES = 4  # tables per column: each is one float per bar of the series
TABLE_CHUNK_VALUES = 4_000_000  # window values reduced per call while building a table (bounds np.std's temporaries)


class SeriesColumn:
    """One column of the series and the tables of its window reductions, keyed by (reduction, length)."""

    def __init__(self, values: np.ndarray):
        self.values = np.ascontiguousarray(values)  # the same numbers; an element's index is its offset / itemsize
        self._windows = self.values.view(WindowColumn)
        self._windows._column = self  # every slice of it has it as its base (numpy collapses a view's base)
        self._windows._at = 0
        self._reads: dict[tuple[str, int], int] = {}
        self._tables: dict[tuple[str, int], np.ndarray] = {}
        # The same tables by numpy function, then length: what ``WindowColumn.__array_function__`` reads per call.
        by_name: dict[str, dict[int, np.ndarray]] = {name: {} for name in _REDUCTIONS}
        self._by_name = by_name
        self._by_function = {function: by_name[name] for function, name in _BY_FUNCTION.items()}
        self._windows._by_function = self._by_function

    def window(self, start: int, stop: int) -> WindowColumn:
        return self._windows[start:stop]

    def reduce(self, name: str, start: int, stop: int):
        key = (name, stop - start)
        table = self._tables.get(key)
        if table is None:
            reads = self._reads[key] = self._reads.get(key, 0) + 1
            if reads < TABLE_AFTER or len(self._tables) >= MAX_TABLES or stop <= start:
                return _REDUCTIONS[name](self.values[start:stop])
            table = self._tables[key] = self._by_name[name][stop - start] = window_table(
                _REDUCTIONS[name], self.values, stop - start
            )
        return table[start]


def window_table(reduce, values: np.ndarray, length: int) -> np.ndarray:
    """``reduce`` of every window of ``length`` values, row by row (each row reduces as the slice would), in chunks
    of rows: ``np.std`` materializes its rows' deviations, so one call over a million windows of 5,000 would need
    40 GB."""
    windows = np.lib.stride_tricks.sliding_window_view(values, length)
    rows = max(1, TABLE_CHUNK_VALUES // length)
    if len(windows) <= rows:
        return reduce(windows, axis=1)
    return np.concatenate([reduce(windows[at : at + rows], axis=1) for at in range(0, len(windows), rows)])


_ndarray_getitem = np.ndarray.__getitem__
_ndarray_array_function = np.ndarray.__array_function__


class WindowColumn(np.ndarray):
    """A slice of a :class:`SeriesColumn`'s values. Slicing it is numpy's own (a view whose base is the column's
    array); a view made by a plain slice (step 1) also records ``_at``, its first value's index in the series, and a
    reduction with numpy's defaults reads the table there. Anything else (a strided or fancy index, a computed
    array, any argument) has no ``_at`` and reduces as a plain array does.

    ``_at`` is worked out from the slice rather than read from the view's address: ``ndarray.ctypes.data`` costs
    about 2 us a call, more than the rest of a reduction."""

    # Slots, not a __dict__: a view's place is set on every slice, and a dict per view was a third of that cost.
    # ``_at`` is unset (AttributeError) on an array with no place in the series; ``_column`` and ``_by_function``
    # (its tables by numpy function and length) are set on the root view of each series column only.
    __slots__ = ("_at", "_column", "_by_function")

    def __array_function__(self, func, types, args, kwargs):
        """``np.mean(window)`` and the other table reductions called with the window alone go to the table without
        numpy's Python wrappers (about 1 us of a reduction's 2); any other call is numpy's own."""
        try:  # _read, inlined: most of a strategy's per-bar work. A view's base is its column's root view.
            at = self._at
            by_length = self.base._by_function.get(func)
        except AttributeError:  # no place in the series, or no view of one
            return _ndarray_array_function(self, func, types, args, kwargs)
        if by_length is not None and not kwargs and len(args) == 1 and args[0] is self:
            table = by_length.get(len(self))
            if table is not None:
                return table[at]
            return self.base._column.reduce(_BY_FUNCTION[func], at, at + len(self))
        return _ndarray_array_function(self, func, types, args, kwargs)

    def __getitem__(self, key):
        view = _ndarray_getitem(self, key)
        try:
            at = self._at
        except AttributeError:  # no place in the series (a computed array, a strided view): nor has the slice
            return view
        if key.__class__ is slice:
            start = key.start
            if key.step is None and start.__class__ is int:  # column[-n:], column[-n-1:-1], column[k:]: clamped
                if start < 0:
                    start += len(self)
                    view._at = at + start if start > 0 else at
                else:
                    view._at = at + min(start, len(self))
            elif key.step is None and start is None:
                view._at = at
            else:
                start, _stop, step = key.indices(len(self))
                if step == 1:
                    view._at = at + start
        return view

    def _read(self, name: str):
        start = getattr(self, "_at", None)
        if start is None:
            return None
        column = getattr(self.base, "_column", None)  # a copy that kept the attribute is no view of the series
        if column is None:
            return None
        stop = start + len(self)
        table = column._tables.get((name, stop - start))
        return table[start] if table is not None else column.reduce(name, start, stop)

    def mean(self, axis=None, dtype=None, out=None, **kwargs):
        if axis is None and dtype is None and out is None and not kwargs:
            value = self._read("mean")
            if value is not None:
                return value
        return self.view(np.ndarray).mean(axis, dtype, out, **kwargs)

    def std(self, axis=None, dtype=None, out=None, ddof=0, **kwargs):
        if axis is None and dtype is None and out is None and ddof == 0 and not kwargs:
            value = self._read("std")
            if value is not None:
                return value
        return self.view(np.ndarray).std(axis, dtype, out, ddof, **kwargs)

    def sum(self, axis=None, dtype=None, out=None, **kwargs):
        if axis is None and dtype is None and out is None and not kwargs:
            value = self._read("sum")
            if value is not None:
                return value
        return self.view(np.ndarray).sum(axis, dtype, out, **kwargs)

    def max(self, axis=None, out=None, **kwargs):
        if axis is None and out is None and not kwargs:
            value = self._read("max")
            if value is not None:
                return value
        return self.view(np.ndarray).max(axis, out, **kwargs)

    def min(self, axis=None, out=None, **kwargs):
        if axis is None and out is None and not kwargs:
            value = self._read("min")
            if value is not None:
                return value
        return self.view(np.ndarray).min(axis, out, **kwargs)


# np.amax / np.amin are the same functions as np.max / np.min in numpy 2, distinct ones before: both are listed.
_BY_FUNCTION = {
    np.mean: "mean",
    np.std: "std",
    np.sum: "sum",
    np.max: "max",
    np.min: "min",
    np.amax: "max",
    np.amin: "min",
}


class SeriesWindows:
    """Every bar's window of one series: ``window(start, stop)`` is Bars ``start:stop`` whose columns are
    :class:`WindowColumn` views, sliced when first read."""

    def __init__(self, series: Bars):
        self.series = series
        self.columns: dict[str, SeriesColumn] = {}
        self.roots = _Roots(self)  # column name -> its SeriesColumn's root view, what a window's column slices

    def column(self, name: str) -> SeriesColumn:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = SeriesColumn(getattr(self.series, name))
        return column

    def window(self, start: int, stop: int) -> BarsWindow:
        return BarsWindow(self.roots, start, stop)


class _Roots(dict):
    """Column name -> the root :class:`WindowColumn` of that column, its SeriesColumn made on first use."""

    def __init__(self, windows: SeriesWindows):
        super().__init__()
        self.windows = windows

    def __missing__(self, name: str) -> WindowColumn:
        root = self[name] = self.windows.column(name)._windows
        return root


class _LazyColumn:
    """A column of :class:`BarsWindow`: sliced from the series on first read and kept in the window's
    ``__dict__``, which later reads find before this (non-data) descriptor."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __get__(self, window, owner=None):
        if window is None:
            return self
        fields = window.__dict__
        roots, start, stop = fields["_slice"]
        column = _ndarray_getitem(roots[self.name], slice(start, stop))
        column._at = start
        fields[self.name] = column
        return column


class BarsWindow(Bars):
    """Bars ``start:stop`` of a series, each column sliced only when first read (most strategies read one or two
    of the six). A column holds the same numbers as ``Bars(*(column[start:stop] ...))`` would."""

    def __init__(self, roots: _Roots, start: int, stop: int):  # noqa: D107 - the fields are filled lazily
        self.__dict__["_slice"] = (roots, start, stop)  # Bars is frozen: its __setattr__ refuses

    ts = _LazyColumn("ts")
    open = _LazyColumn("open")
    high = _LazyColumn("high")
    low = _LazyColumn("low")
    close = _LazyColumn("close")
    volume = _LazyColumn("volume")
