"""``manage.py map_venue_symbols`` reads each venue's own market list through its client and stores the
instrument's market there, audited; nothing is guessed (a perpetual is named and checked, an ambiguous or
missing market is reported with its fix)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import Instrument
from integrations.models import IntegrationUsageEvent
from integrations.venue_symbols import validate_venue_symbols
from tests.integrations.crypto_venues import BTC_USD, FakeCoinbase, FakeHyperliquid, FakeKraken, set_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def serve(point_at, settings, tenant_a, owner_a):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1

    def _serve(fake_class):
        with tenancy.tenant_context(tenant_a.id):
            set_keys(fake_class.name, owner_a)
        return fake_class(point_at(fake_class.name))

    return _serve


def _map(tenant, venue, *args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("map_venue_symbols", "--tenant", tenant.slug, "--venue", venue, *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def _mapping(symbol: str) -> dict:
    return Instrument.objects.get(symbol=symbol).venue_symbols


def test_every_crypto_instrument_is_mapped_from_krakens_pairs_and_audited_once(tenant_a, serve):
    serve(FakeKraken)
    code, out = _map(tenant_a, "kraken")
    assert code == 0, out
    assert _mapping("BTC-USD") == {"kraken": BTC_USD["kraken"]}
    assert _mapping("ETH-USD") == {"kraken": {"symbol": "ETH/USD", "base": "ETH", "quote": "USD", "type": "spot"}}
    events = AuditEvent.unscoped.filter(action="instrument.venue_symbol").order_by("resource_id")
    assert [
        (e.resource_id, e.tenant_id, e.before_state["mapping"], e.after_state["mapping"]["symbol"]) for e in events
    ] == [("BTC-USD", None, None, "BTC/USD"), ("ETH-USD", None, None, "ETH/USD")]
    with tenancy.tenant_context(tenant_a.id):  # the call is the tenant's: its keys, its proof of use
        assert IntegrationUsageEvent.objects.filter(provider="kraken", operation="markets.load").count() == 1

    code, out = _map(tenant_a, "kraken", "--instrument", "BTC-USD")  # the same answer again: nothing to write
    assert code == 0 and "unchanged" in out
    assert AuditEvent.unscoped.filter(action="instrument.venue_symbol").count() == 2


def test_coinbase_maps_btc_usd_to_its_usd_market_not_the_usdc_one(tenant_a, serve):
    serve(FakeCoinbase)
    assert _map(tenant_a, "coinbase", "--instrument", "BTC-USD")[0] == 0
    assert _mapping("BTC-USD") == {"coinbase": BTC_USD["coinbase"]}


def test_a_hyperliquid_perpetual_is_named_by_the_operator_and_checked_against_the_venues_list(tenant_a, serve):
    serve(FakeHyperliquid)
    code, out = _map(tenant_a, "hyperliquid", "--instrument", "BTC-USD")
    assert code == 1 and "NOT MAPPED INSTRUMENT_NOT_MAPPED" in out and "--symbol <one of BTC/USDC:USDC>" in out
    assert _mapping("BTC-USD") == {}

    code, out = _map(tenant_a, "hyperliquid", "--instrument", "BTC-USD", "--symbol", "ETH/USDC:USDC")
    assert code == 1 and "its base is 'ETH', not 'BTC'" in out and _mapping("BTC-USD") == {}

    code, out = _map(tenant_a, "hyperliquid", "--instrument", "BTC-USD", "--symbol", "BTC/USDC:USDC")
    assert code == 0, out
    assert _mapping("BTC-USD") == {"hyperliquid": BTC_USD["hyperliquid"]}


def test_a_mapping_keeps_the_other_venues_and_a_venue_that_cannot_answer_changes_nothing(
    tenant_a, owner_a, serve, settings
):
    serve(FakeKraken)
    assert _map(tenant_a, "kraken", "--instrument", "BTC-USD")[0] == 0
    serve(FakeCoinbase)
    assert _map(tenant_a, "coinbase", "--instrument", "BTC-USD")[0] == 0
    assert set(_mapping("BTC-USD")) == {"kraken", "coinbase"}
    with tenancy.tenant_context(tenant_a.id):
        set_keys("binanceus", owner_a)
    settings.INTEGRATION_BASE_URLS = {"binanceus": "http://127.0.0.1:9"}  # nothing listens there
    with pytest.raises(Exception) as caught:
        _map(tenant_a, "binanceus", "--instrument", "BTC-USD")
    assert "INTEGRATION_UNREACHABLE" in str(caught.value)
    assert set(_mapping("BTC-USD")) == {"kraken", "coinbase"}


@pytest.mark.parametrize(
    "value,problem",
    [
        ({"kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD"}}, "kraken.type must be a non-blank string"),
        ({"hyperliquid": {**BTC_USD["hyperliquid"], "type": "spot"}}, "hyperliquid.type must be 'swap'"),
        ({"tradovate": BTC_USD["kraken"]}, "unknown venue 'tradovate'"),
        ({"kraken": {**BTC_USD["kraken"], "id": "XXBTZUSD"}}, "unknown field 'id'"),
    ],
)
def test_a_hand_edited_mapping_is_validated(value, problem):
    with pytest.raises(ValidationError) as caught:
        validate_venue_symbols(value)
    assert any(problem in message for message in caught.value.messages)
