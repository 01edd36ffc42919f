"""The reference backtest's windows: every reduction a strategy can take of a window column (tabled or not) is
bit for bit the reduction of the same plain slice, and every other use of the column behaves as a plain array."""

import numpy as np
import pytest

from bots.strategies.windows import MAX_TABLES, TABLE_AFTER, SeriesWindows, WindowColumn
from tests.backtests.helpers import memory_bars

REDUCTIONS = [np.mean, np.std, np.sum, np.max, np.min]


@pytest.fixture(scope="module")
def bars():
    return memory_bars(3000, seed=17)


@pytest.mark.parametrize("reduce", REDUCTIONS, ids=lambda f: f.__name__)
def test_reductions_of_windows_equal_those_of_plain_slices_before_and_after_their_table(bars, reduce):
    windows = SeriesWindows(bars)
    for length in (1, 2, 7, 9, 30, 129, 300):
        for stop in range(length, len(bars), 11):  # far more reads than TABLE_AFTER: the table serves most
            window = windows.window(stop - length, stop)
            plain = bars.close[stop - length : stop]
            got, want = reduce(window.close), reduce(plain)
            assert got == want and type(got) is type(want), (length, stop)
            tail = max(1, length // 3)
            assert reduce(window.close[-tail:]) == reduce(plain[-tail:])
            assert window.close[-tail:].mean() == plain[-tail:].mean()
    names = {np.mean: "mean", np.std: "std", np.sum: "sum", np.max: "max", np.min: "min"}
    assert any(name == names[reduce] for name, _ in windows.column("close")._tables), "the tables were read"


def test_slices_elements_and_other_arguments_behave_as_on_a_plain_array(bars):
    window = SeriesWindows(bars).window(100, 160)
    plain = bars.high[100:160]
    column = window.high
    assert isinstance(column, np.ndarray) and np.array_equal(column, plain)
    assert column[-1] == plain[-1] and type(column[-1]) is type(plain[-1])
    for got, want in [
        (column[-21:-1], plain[-21:-1]),
        (column[5:50][-10:], plain[5:50][-10:]),
        (column[50:5], plain[50:5]),
        (column[::3], plain[::3]),
        (column[[1, 4, 9]], plain[[1, 4, 9]]),
        (column[column > column.mean()], plain[plain > plain.mean()]),
    ]:
        assert np.array_equal(got, want)
        assert np.max(got) == np.max(want) if len(want) else True
    # A strided slice, a copy, a computed array: no place in the series, so no table (computed as a plain array).
    assert all(x._read("max") is None for x in (column[::3], column[[1, 2]], column - 1, column[::-1]))
    assert column[-20:]._read("max") == np.max(plain[-20:])
    assert np.std(column, ddof=1) == np.std(plain, ddof=1)
    assert np.array_equal(np.mean(column, keepdims=True), np.mean(plain, keepdims=True))
    assert np.sum(column, dtype=np.float32) == np.sum(plain, dtype=np.float32)
    assert np.max(column, initial=1e9) == np.max(plain, initial=1e9)
    assert np.array_equal(column - 1, plain - 1)
    assert type(window.ts) is WindowColumn and np.array_equal(window.ts, bars.ts[100:160])


def test_many_window_lengths_stay_exact_past_the_table_limit(bars):
    windows = SeriesWindows(bars)
    lengths = range(2, 2 + MAX_TABLES * 2)
    for _ in range(TABLE_AFTER + 1):
        for length in lengths:
            stop = 500 + length
            assert np.mean(windows.window(stop - length, stop).close) == np.mean(bars.close[stop - length : stop])
    assert len(windows.column("close")._tables) == MAX_TABLES


def test_a_table_built_in_chunks_equals_one_built_at_once(bars, monkeypatch):
    from bots.strategies import windows as module

    whole = {name: module.window_table(reduce, bars.close, 37) for name, reduce in module._REDUCTIONS.items()}
    monkeypatch.setattr(module, "TABLE_CHUNK_VALUES", 37 * 100 + 5)  # 100 rows a chunk: 30 chunks, a short last one
    for name, reduce in module._REDUCTIONS.items():
        chunked = module.window_table(reduce, bars.close, 37)
        assert np.array_equal(chunked, whole[name]) and len(chunked) == len(bars) - 36


@pytest.mark.parametrize("reduce", REDUCTIONS, ids=lambda f: f.__name__)
def test_nested_and_clamped_slices_read_the_table_at_their_own_place(bars, reduce, monkeypatch):
    """A view's place in the series is worked out from the slices that made it (not its address): nested slices,
    negative and out-of-range bounds (numpy clamps them) and empty slices each read the table at their own start."""
    from bots.strategies import windows as module

    monkeypatch.setattr(module, "TABLE_AFTER", 1)  # every (reduction, length) gets its table on its first read
    windows = SeriesWindows(bars)
    keys = [
        slice(None),
        slice(-10, None),
        slice(-1000, None),
        slice(3, 1000),
        slice(-21, -1),
        slice(5, 45),
        slice(7, 7),
        slice(None, None, 1),
    ]
    for stop in (60, 61, 1000, len(bars)):
        window = windows.window(stop - 60, stop)
        plain = bars.low[stop - 60 : stop]
        for outer in keys:
            for inner in keys:
                got, want = window.low[outer][inner], plain[outer][inner]
                if len(want):
                    assert got._at == stop - 60 + (outer.indices(60)[0] + inner.indices(len(plain[outer]))[0])
                    assert reduce(got) == reduce(want) and type(reduce(got)) is type(reduce(want)), (stop, outer, inner)
    assert windows.column("low")._tables, "the tables were read"


def test_other_numpy_functions_of_a_window_are_numpys_own(bars):
    """np.mean and the other table reductions of a window alone skip numpy's wrappers; every other function (and
    a reduction with any argument) is numpy's own, with the same result as on the plain slice."""
    window = SeriesWindows(bars).window(200, 260)
    column, plain = window.close, bars.close[200:260]
    assert np.array_equal(np.concatenate([column, column]), np.concatenate([plain, plain]))
    assert np.array_equal(np.diff(column), np.diff(plain))
    assert np.percentile(column, 90) == np.percentile(plain, 90)
    assert np.median(column[-9:]) == np.median(plain[-9:])
    assert np.amax(column[-9:]) == np.max(plain[-9:]) and np.amin(column[-9:]) == np.min(plain[-9:])
    assert np.mean(column, 0) == np.mean(plain, 0) and np.mean(column, axis=None) == np.mean(plain)
    assert np.array_equal(np.maximum(column, plain), plain)
    assert np.mean(column - 1) == np.mean(plain - 1)  # a computed array has no place in the series
