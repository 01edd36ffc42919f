"""Bar history and freshness: the tick gets the bar it needs or a reason, never an invented price."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from execution.models import Bar
from execution.marketdata.selectors import DataProblem, bar_history, bars_for_tick, bars_for_ticks, latest_bar
from tests.execution.helpers import store_bars
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db
CT = ZoneInfo("America/Chicago")
TUESDAY_0900_CT = datetime(2026, 11, 24, 9, 0, tzinfo=CT)


@pytest.fixture
def es():
    return InstrumentFactory(symbol="ESTEST", calendar="CME_Equity")


def test_history_is_the_last_complete_bars_oldest_first_as_read_only_arrays(es):
    store_bars(es, TUESDAY_0900_CT, 30)
    as_of = TUESDAY_0900_CT + timedelta(minutes=20, seconds=30)  # the 09:20 bar is still forming
    history = bar_history(instrument_id=es.id, timeframe="1m", as_of=as_of, count=5)
    assert len(history) == 5
    assert history.last_ts == TUESDAY_0900_CT + timedelta(minutes=19)
    assert history.open.tolist() == [115.0, 116.0, 117.0, 118.0, 119.0]
    assert history.close[-1] == 119.5
    assert history.ts.dtype == np.dtype("datetime64[us]")
    assert np.all(np.diff(history.ts) == np.timedelta64(60, "s"))
    with pytest.raises(ValueError):
        history.close[0] = 1.0


def test_no_bar_is_data_unavailable_without_a_price(es):
    check = latest_bar(instrument=es, timeframe="1m", as_of=TUESDAY_0900_CT)
    assert check.problem == DataProblem.DATA_UNAVAILABLE
    assert check.close is None and not check.ok


def test_only_bars_of_the_asked_timeframe_count(es):
    store_bars(es, TUESDAY_0900_CT, 3, timeframe="5m")
    check = latest_bar(instrument=es, timeframe="1m", as_of=TUESDAY_0900_CT + timedelta(minutes=20))
    assert check.problem == DataProblem.DATA_UNAVAILABLE


def test_the_latest_complete_bar_is_fresh(es):
    store_bars(es, TUESDAY_0900_CT, 10)
    check = latest_bar(instrument=es, timeframe="1m", as_of=TUESDAY_0900_CT + timedelta(minutes=10, seconds=5))
    assert check.ok
    assert check.bar_ts == TUESDAY_0900_CT + timedelta(minutes=9)
    assert check.close == 109.5


def test_a_missing_bar_in_open_market_is_stale_and_carries_no_price(es):
    store_bars(es, TUESDAY_0900_CT, 10, skip={8, 9})
    check = latest_bar(instrument=es, timeframe="1m", as_of=TUESDAY_0900_CT + timedelta(minutes=10, seconds=5))
    assert check.problem == DataProblem.DATA_STALE
    assert check.close is None
    assert check.details["bar_ts"] == (TUESDAY_0900_CT + timedelta(minutes=7)).astimezone(UTC).isoformat()
    assert check.details["open_seconds_since_bar_close"] > check.details["allowed_seconds"] == 60


def test_fridays_last_bar_is_not_stale_over_the_weekend_but_is_after_the_sunday_open(es):
    friday_last = datetime(2026, 11, 20, 15, 59, tzinfo=CT)
    store_bars(es, friday_last - timedelta(minutes=4), 5)
    saturday = latest_bar(instrument=es, timeframe="1m", as_of=datetime(2026, 11, 21, 12, 0, tzinfo=CT))
    assert saturday.ok and saturday.bar_ts == friday_last
    sunday_after_open = latest_bar(instrument=es, timeframe="1m", as_of=datetime(2026, 11, 22, 17, 5, tzinfo=CT))
    assert sunday_after_open.problem == DataProblem.DATA_STALE


def test_crypto_bars_go_stale_at_any_hour():
    btc = InstrumentFactory(symbol="BTCTEST", asset_class="crypto", venue="COINBASE", calendar="24/7")
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    store_bars(btc, saturday, 5)
    assert latest_bar(instrument=btc, timeframe="1m", as_of=saturday + timedelta(minutes=5)).ok
    late = latest_bar(instrument=btc, timeframe="1m", as_of=saturday + timedelta(minutes=7))
    assert late.problem == DataProblem.DATA_STALE


def test_a_tick_batch_reads_bars_in_one_query(es, django_assert_num_queries):
    store_bars(es, TUESDAY_0900_CT, 50)
    as_of = TUESDAY_0900_CT + timedelta(minutes=50)
    with django_assert_num_queries(1):
        tick = bars_for_tick(instrument=es, timeframe="1m", as_of=as_of, count=20)
    assert tick.status.is_open
    assert tick.check.ok and len(tick.history) == 20
    assert tick.check.close == tick.history.close[-1]


def test_several_instruments_bars_read_in_one_query_equal_each_read_alone(es, django_assert_num_queries):
    """The tick's runs over several instruments read their bars together; each instrument's, with its own count
    (one with no bars at all, one with bars that stop early: stale), is what its own read would give."""
    other = InstrumentFactory(symbol="ESTEST2", calendar="CME_Equity")
    empty = InstrumentFactory(symbol="ESTEST3", calendar="CME_Equity")
    store_bars(es, TUESDAY_0900_CT, 50)
    store_bars(other, TUESDAY_0900_CT, 30)
    as_of = TUESDAY_0900_CT + timedelta(minutes=50)
    counts = {es: 20, other: 40, empty: 5}
    with django_assert_num_queries(1):
        together = bars_for_ticks(counts=counts, timeframe="1m", as_of=as_of)
    assert len(together[es].history) == 20 and len(together[other].history) == 30 and not len(together[empty].history)
    assert together[es].check.ok and together[other].check.problem == DataProblem.DATA_STALE
    assert together[empty].check.problem == DataProblem.DATA_UNAVAILABLE
    for instrument, count in counts.items():
        alone = bars_for_tick(instrument=instrument, timeframe="1m", as_of=as_of, count=count)
        got = together[instrument]
        assert (got.status, got.check) == (alone.status, alone.check)
        for column in ("ts", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(got.history, column), getattr(alone.history, column))
            assert not getattr(got.history, column).flags.writeable


def test_bars_that_break_ohlc_are_refused_by_the_database(es):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Bar.objects.create(
            instrument=es,
            timeframe="1m",
            ts=TUESDAY_0900_CT,
            open=10,
            high=9,
            low=8,
            close=9,
            volume=1,
            source="imported",
        )
