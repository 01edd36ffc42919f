"""``latest_mark`` (the price of PnL, the drawdown breaker and reconcile resolution) is one indexed query whatever
the size of the history: with 22,320 bars its old per-bar loop made a market intent take 25 s."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.models import Bar
from execution.risk.positions import Mark, latest_mark
from bots.timeframes import timeframe_delta
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def _bars(instrument, timeframe: str, start: datetime, count: int, base: int) -> list[Bar]:
    step = timeframe_delta(timeframe)
    bars = []
    for i in range(count):
        close = Decimal(base) + Decimal(i % 97) / 4
        bars.append(
            Bar(
                instrument=instrument,
                timeframe=timeframe,
                ts=start + i * step,
                open=close,
                high=close + 1,
                low=close - 1,
                close=close,
                volume=Decimal(10),
                source=Bar.Source.IMPORTED,
            )
        )
    return bars


def _scan(instrument, as_of: datetime) -> Mark | None:
    """The definition, read the slow way: the latest complete bar of each timeframe, then the one that closed
    last (a tie goes to the first timeframe in name order, as the per-timeframe loop did)."""
    best, best_close = None, None
    for bar in sorted(Bar.objects.filter(instrument=instrument), key=lambda b: (b.timeframe, b.ts)):
        closed_at = bar.ts + timeframe_delta(bar.timeframe)
        if closed_at > as_of:
            continue
        if best_close is None or closed_at > best_close or (closed_at == best_close and bar.timeframe < best.timeframe):
            best, best_close = Mark(bar.close, bar.ts, bar.timeframe), closed_at
    return best


def test_latest_mark_is_one_query_with_ten_thousand_bars():
    es = InstrumentFactory(symbol="ES")
    Bar.objects.bulk_create(
        _bars(es, "1m", START, 9_000, 6000) + _bars(es, "1h", START, 140, 6100) + _bars(es, "1d", START, 860, 6200),
        batch_size=2000,
    )
    assert Bar.objects.filter(instrument=es).count() == 10_000
    as_of = START + timedelta(minutes=9_000)
    with CaptureQueriesContext(connection) as queries:
        mark = latest_mark(es, as_of=as_of)
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert (
        mark == _scan(es, as_of) == Mark(Decimal(6000) + Decimal(8999 % 97) / 4, START + timedelta(minutes=8_999), "1m")
    )


@pytest.mark.parametrize("minutes", [0, 1, 59, 60, 61, 119, 120, 121, 24 * 60, 24 * 60 + 1, 5 * 24 * 60])
def test_latest_mark_answers_as_the_per_timeframe_scan_on_a_mixed_history(minutes):
    es, nq = InstrumentFactory(symbol="ES"), InstrumentFactory(symbol="NQ")
    Bar.objects.bulk_create(
        _bars(es, "1m", START + timedelta(minutes=3), 100, 6000)
        + _bars(es, "5m", START, 30, 6050)
        + _bars(es, "1h", START, 6, 6100)
        + _bars(es, "1d", START - timedelta(hours=14), 3, 6200)
        + _bars(nq, "1m", START, 500, 21000)
    )  # another instrument's bars are not ES's marks
    as_of = START + timedelta(minutes=minutes)
    assert latest_mark(es, as_of=as_of) == _scan(es, as_of)


def test_latest_mark_is_none_without_a_complete_bar():
    es = InstrumentFactory(symbol="ES")
    assert latest_mark(es, as_of=START) is None
    Bar.objects.bulk_create(_bars(es, "1h", START, 1, 6000))
    assert latest_mark(es, as_of=START + timedelta(minutes=59)) is None  # the bar is still open
    assert latest_mark(es, as_of=START + timedelta(hours=1)) == Mark(Decimal(6000), START, "1h")
