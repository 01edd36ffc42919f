"""The quote tables: the one selector of usable quotes (fresh, or why not), day partitions kept and dropped by the
retention setting, and the 1-minute history that outlives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from controlplane.models import AuditEvent
from execution.marketdata.models import FundingRate, QuoteMinute, SpotQuote
from execution.marketdata.quote_selectors import usable_quotes
from execution.marketdata.quote_store import quote_minutes_downsample, quote_partition_days, quote_partitions_maintain
from execution.models import Instrument
from tests.integrations.crypto_venues import BTC_USD

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def btc(db):
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {v: BTC_USD[v] for v in ("kraken", "coinbase", "binanceus", "hyperliquid")}
    instrument.save(update_fields=["venue_symbols"])
    return instrument


def quote(instrument, venue, at, bid, ask, *, market_type="spot", size="1.5"):
    return SpotQuote(
        venue=venue,
        instrument=instrument,
        market=BTC_USD[venue]["symbol"],
        market_type=market_type,
        bid=Decimal(bid),
        ask=Decimal(ask),
        bid_size=Decimal(size),
        ask_size=Decimal(size),
        venue_ts=at - timedelta(milliseconds=40),
        received_at=at,
    )


def test_usable_quotes_are_the_fresh_ones_and_each_other_venue_says_why(btc, settings):
    settings.ARB_QUOTE_MAX_AGE_MS = 2000
    SpotQuote.objects.bulk_create(
        [
            quote(btc, "kraken", NOW - timedelta(seconds=30), "49990", "50000"),  # older one of the same venue
            quote(btc, "kraken", NOW - timedelta(milliseconds=500), "50010", "50020"),
            quote(btc, "coinbase", NOW - timedelta(seconds=9), "50100", "50110"),  # stale
            quote(btc, "hyperliquid", NOW - timedelta(milliseconds=100), "50200", "50201", market_type="swap"),
            quote(btc, "kraken", NOW + timedelta(seconds=10), "1", "2"),  # after as_of: does not exist yet
        ]
    )

    view = usable_quotes(as_of=NOW)

    assert [(q.venue, q.bid, q.ask, q.age_ms) for q in view.usable] == [
        ("kraken", Decimal("50010"), Decimal("50020"), 500)
    ]
    assert [u.as_dict() for u in view.unusable] == [
        {
            "symbol": "BTC-USD",
            "venue": "binanceus",
            "reason": "DATA_UNAVAILABLE",
            "detail": "no binanceus quote for BTC-USD",
            "received_at": None,
            "age_ms": None,
        },
        {
            "symbol": "BTC-USD",
            "venue": "coinbase",
            "reason": "DATA_STALE",
            "detail": "latest coinbase quote is 9000 ms old (limit 2000 ms)",
            "received_at": (NOW - timedelta(seconds=9)).isoformat(),
            "age_ms": 9000,
        },
    ]
    assert {symbol: [q.venue for q in quotes] for symbol, quotes in view.by_instrument().items()} == {
        "BTC-USD": ["kraken"]
    }
    perps = usable_quotes(as_of=NOW, market_type="swap")
    assert [(q.venue, q.market) for q in perps.usable] == [("hyperliquid", "BTC/USDC:USDC")]
    # The same rows read later: kraken's quote at 1.5 s old is still usable; at 2.1 s it is stale.
    assert [q.venue for q in usable_quotes(as_of=NOW + timedelta(seconds=1)).usable] == ["kraken"]
    later = usable_quotes(as_of=NOW + timedelta(milliseconds=1600), venues=["kraken"])
    assert later.usable == []
    assert [(u.venue, str(u.reason), u.age_ms) for u in later.unusable] == [("kraken", "DATA_STALE", 2100)]


def test_a_crossed_book_is_never_usable(btc):
    SpotQuote.objects.bulk_create([quote(btc, "binanceus", NOW - timedelta(milliseconds=10), "50010", "50000")])
    view = usable_quotes(as_of=NOW, venues=["binanceus"])
    assert view.usable == []
    assert [(u.venue, str(u.reason), u.detail) for u in view.unusable] == [
        ("binanceus", "DATA_UNAVAILABLE", "binanceus book is crossed (bid 50010.0000000000 >= ask 50000.0000000000)")
    ]


def test_partitions_are_made_ahead_and_whole_days_past_retention_dropped_and_audited(btc):
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old = now - timedelta(days=3)
    quote_partitions_maintain(now=old, ahead_days=4, retention_hours=48)  # the days the old rows land in
    SpotQuote.objects.bulk_create(
        [quote(btc, "kraken", old, "100", "101"), quote(btc, "kraken", now - timedelta(hours=1), "100", "101")]
    )

    result = quote_partitions_maintain(now=now, ahead_days=2, retention_hours=48)

    days = quote_partition_days()
    assert old.date() not in days and (now - timedelta(days=2)).date() in days
    assert now.date() + timedelta(days=2) in days
    assert old.date() in [row["day"] for row in result.dropped]
    assert list(SpotQuote.objects.values_list("received_at", flat=True)) == [now - timedelta(hours=1)]
    event = AuditEvent.unscoped.filter(action="marketdata.quote_partitions_maintained").latest("id")
    assert event.tenant_id is None and event.after_state["retention_hours"] == 48
    with pytest.raises(ValueError):
        quote_partitions_maintain(now=now, retention_hours=12)


def test_minutes_and_funding_rates_older_than_the_history_are_deleted_and_audited(btc):
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    old, kept = now - timedelta(days=31), now - timedelta(days=29)
    QuoteMinute.objects.bulk_create(
        [
            QuoteMinute(
                venue="kraken",
                instrument=btc,
                market_type="spot",
                minute=at,
                mid_open=1,
                mid_high=1,
                mid_low=1,
                mid_close=1,
                spread_open=0,
                spread_high=0,
                spread_low=0,
                spread_close=0,
                samples=1,
            )
            for at in (old, kept)
        ]
    )
    FundingRate.objects.bulk_create(
        [
            FundingRate(
                venue="hyperliquid",
                instrument=btc,
                market="BTC/USDC:USDC",
                rate=Decimal("0.0001"),
                interval_hours=1,
                funding_at=at,
                received_at=at,
            )
            for at in (old, kept)
        ]
    )

    result = quote_partitions_maintain(now=now, ahead_days=1, history_days=30)

    assert (result.minutes_deleted, result.funding_rates_deleted) == (1, 1)
    assert list(QuoteMinute.objects.values_list("minute", flat=True)) == [kept]
    assert list(FundingRate.objects.values_list("funding_at", flat=True)) == [kept]
    event = AuditEvent.unscoped.filter(action="marketdata.quote_partitions_maintained").latest("id")
    assert event.after_state["funding_rates_deleted"] == 1 and event.after_state["history_days"] == 30


def test_a_quote_without_its_day_lands_in_the_default_partition_and_moves_in_when_the_day_is_made(btc):
    far = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)
    SpotQuote.objects.bulk_create([quote(btc, "kraken", far, "100", "101")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM execution_spotquote_default")
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT marketdata_quotes_ensure_day('execution_spotquote', %s)", [far.date()])
        cursor.execute("SELECT count(*) FROM execution_spotquote_default")
        assert cursor.fetchone()[0] == 0
    assert SpotQuote.objects.get().received_at == far


def test_closed_minutes_fold_into_mid_and_spread_ohlc_and_refolding_changes_nothing(btc):
    minute = NOW.replace(second=0) - timedelta(minutes=2)
    SpotQuote.objects.bulk_create(
        [
            quote(btc, "kraken", minute + timedelta(seconds=1), "100", "102"),  # mid 101, spread 2
            quote(btc, "kraken", minute + timedelta(seconds=20), "104", "105"),  # mid 104.5, spread 1
            quote(btc, "kraken", minute + timedelta(seconds=59), "98", "101"),  # mid 99.5, spread 3
            quote(btc, "kraken", minute + timedelta(seconds=61), "100", "100.5"),  # next minute
            quote(btc, "kraken", NOW.replace(second=0) + timedelta(seconds=5), "1", "2"),  # still open: not folded
        ]
    )

    quote_minutes_downsample(now=NOW)
    quote_minutes_downsample(now=NOW)

    rows = list(QuoteMinute.objects.order_by("minute"))
    assert [(r.minute, r.samples) for r in rows] == [(minute, 3), (minute + timedelta(minutes=1), 1)]
    first = rows[0]
    assert (first.mid_open, first.mid_high, first.mid_low, first.mid_close) == (
        Decimal("101"),
        Decimal("104.5"),
        Decimal("99.5"),
        Decimal("99.5"),
    )
    assert (first.spread_open, first.spread_high, first.spread_low, first.spread_close) == (2, 3, 1, 3)


def test_beat_schedules_the_quote_maintenance_and_the_minute_fold_by_registered_task_name(btc, settings):
    import execution.tasks  # noqa: F401 (what a worker's autodiscovery imports)
    from controlplane.celery import app

    SpotQuote.objects.bulk_create([quote(btc, "kraken", datetime.now(UTC) - timedelta(minutes=2), "100", "102")])
    for entry in ("execution-quote-partitions", "execution-quote-minutes"):
        name = settings.CELERY_BEAT_SCHEDULE[entry]["task"]
        assert name in app.tasks, name
    result = app.tasks["execution.maintain_quote_partitions"].apply().get()
    assert set(result) == {"created", "dropped", "minutes_deleted", "funding_rates_deleted"}
    assert app.tasks["execution.downsample_quotes"].apply().get() == 1
    assert QuoteMinute.objects.get().mid_close == Decimal("101")
