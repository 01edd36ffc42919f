"""Market hours from the calendars: CME Globex sessions, the daily break, holidays, early closes, 24/7 crypto."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from execution.marketdata import calendars
from execution.marketdata.calendars import calendar_for, calendar_status, open_seconds_between, product_root

CT = ZoneInfo("America/Chicago")


def ct(*args) -> datetime:
    return datetime(*args, tzinfo=CT)


def test_es_is_open_on_a_tuesday_morning_until_the_1600_ct_close():
    status = calendar_status("CME_Equity", ct(2026, 11, 24, 10, 0))
    assert status.is_open
    assert status.session == date(2026, 11, 24)
    assert status.session_open == ct(2026, 11, 23, 17, 0)
    assert status.next_close == ct(2026, 11, 24, 16, 0)
    assert status.next_open == ct(2026, 11, 24, 17, 0)


def test_es_is_closed_in_the_daily_maintenance_break_and_reopens_at_1700_ct():
    status = calendar_status("CME_Equity", ct(2026, 11, 24, 16, 30))
    assert not status.is_open
    assert status.session is None
    assert status.next_open == ct(2026, 11, 24, 17, 0)
    assert status.next_close == ct(2026, 11, 25, 16, 0)


def test_thanksgiving_closes_early_at_noon_ct():
    morning = calendar_status("CME_Equity", ct(2026, 11, 26, 11, 0))
    assert morning.is_open and morning.next_close == ct(2026, 11, 26, 12, 0)
    afternoon = calendar_status("CME_Equity", ct(2026, 11, 26, 13, 0))
    assert not afternoon.is_open
    assert afternoon.next_open == ct(2026, 11, 26, 17, 0)


def test_weekend_is_closed_until_sunday_evening():
    status = calendar_status("CME_Equity", ct(2026, 11, 28, 12, 0))
    assert not status.is_open
    assert status.next_open == ct(2026, 11, 29, 17, 0)


def test_christmas_day_is_a_holiday():
    status = calendar_status("CME_Equity", ct(2026, 12, 25, 10, 0))
    assert not status.is_open
    assert status.next_open.astimezone(CT).date() > date(2026, 12, 25)


def test_a_grains_break_is_closed_inside_its_session():
    status = calendar_status("CMEGlobex_Grains", ct(2026, 11, 24, 8, 0))
    assert not status.is_open
    assert status.session == date(2026, 11, 24)
    assert status.next_open == ct(2026, 11, 24, 8, 30)


def test_crypto_never_closes():
    status = calendar_status("24/7", datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    assert status.is_open and status.always_open
    assert status.next_close is None and status.next_open is None


def test_open_time_counts_only_trading_hours():
    # Friday after Thanksgiving closes at 12:00 CT; Globex reopens Sunday 17:00 CT.
    assert open_seconds_between("CME_Equity", ct(2026, 11, 27, 12, 0), ct(2026, 11, 29, 17, 5)) == 300
    assert open_seconds_between("CME_Equity", ct(2026, 11, 24, 15, 0), ct(2026, 11, 24, 17, 30)) == 3600 + 1800
    assert open_seconds_between("24/7", ct(2026, 11, 28, 0, 0), ct(2026, 11, 28, 1, 0)) == 3600


def test_schedules_are_built_once_per_calendar_and_year():
    calendar_status("CME_Equity", ct(2026, 6, 2, 10, 0))
    misses = calendars._year_intervals.cache_info().misses
    for minute in range(60):
        calendar_status("CME_Equity", ct(2026, 6, 2, 10, minute))
        open_seconds_between("CME_Equity", ct(2026, 6, 2, 9, 0), ct(2026, 6, 2, 10, minute))
    assert calendars._year_intervals.cache_info().misses == misses


def test_product_map_resolves_contracts_and_continuous_symbols():
    assert product_root("ESZ6") == "ES"
    assert product_root("ES.c.0") == "ES"
    assert product_root("MNQH27") == "MNQ"
    assert calendar_for("ESZ6", "future") == "CME_Equity"
    assert calendar_for("ZN", "future") == "CME_Bond"
    assert calendar_for("BTC-USD", "crypto") == "24/7"
    assert calendar_for("UNKNOWN", "future") is None


def test_unsupported_calendar_and_naive_time_are_refused():
    with pytest.raises(calendars.UnknownCalendar):
        calendar_status("NOT_A_CALENDAR", ct(2026, 11, 24, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        calendar_status("CME_Equity", datetime(2026, 11, 24, 10, 0))
