"""Root → contract: the front month of the CME quarterly cycle with a roll N weekdays before the third-Friday
expiry, in each broker's form, and back. Fixed dates either side of the roll."""

from datetime import UTC, datetime

import pytest

from integrations.providers.futures_contracts import (
    front_contract,
    ironbeam_symbol,
    roll_date,
    root_of,
    tradovate_symbol,
)
from integrations.venues.base import VenueError


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=15, tzinfo=UTC)


@pytest.mark.parametrize(
    "day,tradovate,ironbeam",
    [
        ("2026-12-09", "ESZ6", "XCME:ES.Z26"),  # Wednesday before the roll: December is still the front month
        ("2026-12-10", "ESH7", "XCME:ES.H27"),  # roll day: 6 weekdays before Friday 18 December (expiry)
        ("2026-12-18", "ESH7", "XCME:ES.H27"),  # expiry day itself
        ("2026-12-28", "ESH7", "XCME:ES.H27"),  # after expiry, into the next year's March
        ("2027-01-05", "ESH7", "XCME:ES.H27"),
        ("2026-03-11", "ESH6", "XCME:ES.H26"),  # the day before March 2026's roll (Thursday 12, expiry Friday 20)
        ("2026-03-12", "ESM6", "XCME:ES.M26"),
        ("2026-07-01", "ESU6", "XCME:ES.U26"),  # between quarters: the next listed quarter
    ],
)
def test_front_month_across_a_roll(day, tradovate, ironbeam):
    assert tradovate_symbol("ES", at(day)) == tradovate
    assert ironbeam_symbol("ES", at(day)) == ironbeam


def test_every_supported_product_rolls_on_the_same_rule():
    for root in ("ES", "NQ", "MES", "MNQ"):
        assert tradovate_symbol(root, at("2026-12-09")) == f"{root}Z6"
        assert tradovate_symbol(root, at("2026-12-10")) == f"{root}H7"


def test_the_roll_offset_is_configurable_per_product(settings):
    settings.FUTURES_ROLL_BUSINESS_DAYS = {"NQ": 2}
    assert str(roll_date(front_contract("NQ", at("2026-12-01")))) == "2026-12-16"
    assert tradovate_symbol("NQ", at("2026-12-15")) == "NQZ6"
    assert tradovate_symbol("NQ", at("2026-12-16")) == "NQH7"
    assert tradovate_symbol("ES", at("2026-12-15")) == "ESH7"  # ES keeps the default


@pytest.mark.parametrize("root", ["CL", "GC", "ZN", "6E", "BTC-USD", "YM"])
def test_unsupported_roots_are_refused_never_guessed(root):
    with pytest.raises(VenueError) as caught:
        tradovate_symbol(root, at("2026-12-01"))
    assert caught.value.code == "ORDER_REJECTED" and "ES, MES, MNQ, NQ" in str(caught.value)
    with pytest.raises(VenueError):
        ironbeam_symbol(root, at("2026-12-01"))


def test_an_explicit_contract_is_sent_as_it_is_and_maps_back_to_its_root():
    assert tradovate_symbol("MESZ6", at("2027-01-05")) == "MESZ6"
    assert ironbeam_symbol("XCME:MES.Z26", at("2027-01-05")) == "XCME:MES.Z26"
    assert [root_of(s) for s in ("ESZ6", "MNQH7", "XCME:NQ.M27", "XCEC:GC.G27", "CLF7")] == [
        "ES",
        "MNQ",
        "NQ",
        "XCEC:GC.G27",
        "CLF7",
    ]
