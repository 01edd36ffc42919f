"""Bar windows for the reference backtest: each bar's window of one long series, and its reductions read by index.

The reference path (``backtests.engine.run_reference``) calls a strategy's ``_decide`` once per bar on the last
``warmup_bars`` bars. Most of that time was not the strategy's rule but numpy's per-call overhead on tiny arrays:
``np.mean`` of ten closes costs more than the rest of a bar. Here a window's columns are views of the series (the
same numbers ``decide`` would slice) of a subclass that knows where in the series it sits, and ``np.mean``,
``np.std`` (ddof 0), ``np.sum``, ``np.max`` and ``np.min`` of such a view (or of a plain slice of it) read one
entry of a table computed once over the whole series for that window length (the sliding-window reduction, which
reduces each row exactly as the reduction of that slice does: ``tests/bots/test_strategy_windows.py`` holds it to
the bit). Anything else computes as on any array. Only lengths a run asks for often get a table, and only a few.
"""

from __future__ import annotations

import numpy as np

from bots.strategies.base import BAR_COLUMNS, Bars

_REDUCTIONS = {"mean": np.mean, "std": np.std, "sum": np.sum, "max": np.max, "min": np.min}
TABLE_AFTER = 64  # reads of one (reduction, length) before its table is built: a rare length never pays for one
MAX_TABLES = 4  # tables per column: each is one float per bar of the series
TABLE_CHUNK_VALUES = 4_000_000  # window values reduced per call while building a table (bounds np.std's temporaries)


class SeriesColumn:
    """One column of the series and the tables of its window reductions, keyed by (reduction, length)."""

    def __init__(self, values: np.ndarray):
        self.values = values
        self._windows = values.view(WindowColumn)
        self._reads: dict[tuple[str, int], int] = {}
        self._tables: dict[tuple[str, int], np.ndarray] = {}

    def window(self, start: int, stop: int) -> WindowColumn:
        view = np.ndarray.__getitem__(self._windows, slice(start, stop))
        view._span = (self, start, stop)
        return view

    def reduce(self, name: str, start: int, stop: int):
        key = (name, stop - start)
        table = self._tables.get(key)
        if table is None:
            reads = self._reads[key] = self._reads.get(key, 0) + 1
            if reads < TABLE_AFTER or len(self._tables) >= MAX_TABLES or stop <= start:
                return _REDUCTIONS[name](self.values[start:stop])
            table = self._tables[key] = _table(_REDUCTIONS[name], self.values, stop - start)
        return table[start]


def _table(reduce, values: np.ndarray, length: int) -> np.ndarray:
    """``reduce`` of every window of ``length`` values, row by row (each row reduces as the slice would), in chunks
    of rows: ``np.std`` materializes its rows' deviations, so one call over a million windows of 5,000 would need
    40 GB."""
    windows = np.lib.stride_tricks.sliding_window_view(values, length)
    rows = max(1, TABLE_CHUNK_VALUES // length)
    if len(windows) <= rows:
        return reduce(windows, axis=1)
    return np.concatenate([reduce(windows[at : at + rows], axis=1) for at in range(0, len(windows), rows)])


class WindowColumn(np.ndarray):
    """A contiguous stretch of a :class:`SeriesColumn` (``_span``: column, start, stop). A plain slice of it is
    one too; any other result (an element, a computed array) is an ordinary number or array."""

    def __getitem__(self, key):
        got = np.ndarray.__getitem__(self, key)
        span = self.__dict__.get("_span")
        if span is None or type(got) is not WindowColumn:
            return got
        if type(key) is slice and key.step is None:
            start, stop, _ = key.indices(span[2] - span[1])
            got._span = (span[0], span[1] + start, span[1] + max(start, stop))
            return got
        return got.view(np.ndarray)

    def _table(self, name: str, axis, dtype, out, kwargs):
        span = self.__dict__.get("_span")
        if span is None or axis is not None or dtype is not None or out is not None or kwargs:
            return None
        return span[0].reduce(name, span[1], span[2])

    def mean(self, axis=None, dtype=None, out=None, **kwargs):
        # The common case inline (a moving average per bar is the hot path of most strategies).
        span = self.__dict__.get("_span")
        if span is not None and axis is None and dtype is None and out is None and not kwargs:
            column, start, stop = span
            table = column._tables.get(("mean", stop - start))
            return table[start] if table is not None else column.reduce("mean", start, stop)
        return self.view(np.ndarray).mean(axis, dtype, out, **kwargs)

    def std(self, axis=None, dtype=None, out=None, ddof=0, **kwargs):
        value = self._table("std", axis, dtype, out, kwargs) if ddof == 0 else None
        return self.view(np.ndarray).std(axis, dtype, out, ddof, **kwargs) if value is None else value

    def sum(self, axis=None, dtype=None, out=None, **kwargs):
        value = self._table("sum", axis, dtype, out, kwargs)
        return self.view(np.ndarray).sum(axis, dtype, out, **kwargs) if value is None else value

    def max(self, axis=None, out=None, **kwargs):
        value = self._table("max", axis, None, out, kwargs)
        return self.view(np.ndarray).max(axis, out, **kwargs) if value is None else value

    def min(self, axis=None, out=None, **kwargs):
        value = self._table("min", axis, None, out, kwargs)
        return self.view(np.ndarray).min(axis, out, **kwargs) if value is None else value


class SeriesWindows:
    """Every bar's window of one series: ``window(start, stop)`` is Bars ``start:stop`` whose columns are
    :class:`WindowColumn` views, sliced when first read."""

    def __init__(self, series: Bars):
        self.series = series
        self.columns: dict[str, SeriesColumn] = {}

    def column(self, name: str) -> SeriesColumn:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = SeriesColumn(getattr(self.series, name))
        return column

    def window(self, start: int, stop: int) -> BarsWindow:
        return BarsWindow(self, start, stop)


class BarsWindow(Bars):
    """Bars ``start:stop`` of a series, each column sliced only when first read (most strategies read one or two
    of the six). A column holds the same numbers as ``Bars(*(column[start:stop] ...))`` would."""

    def __init__(self, windows: SeriesWindows, start: int, stop: int):  # noqa: D107 - the fields are filled lazily
        object.__setattr__(self, "_slice", (windows, start, stop))

    def __getattr__(self, name: str):
        if name not in BAR_COLUMNS:
            raise AttributeError(name)
        windows, start, stop = self.__dict__["_slice"]
        series = windows.columns.get(name) or windows.column(name)
        column = np.ndarray.__getitem__(series._windows, slice(start, stop))
        column._span = (series, start, stop)
        object.__setattr__(self, name, column)
        return column
