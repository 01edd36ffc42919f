"""Reconcile of LIVE crypto bots (issue 13, defect 3), through the real ccxt code against each venue's REST shapes:
spot compares the bot's base-asset quantity with the venue's balance of that asset (the quote asset and
currencies no instrument of the bot is based on are not positions), attributed across the tenant's bots on that
asset through the venue inventory; Hyperliquid compares signed perpetual positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oversight.reconcile import bot_reconcile
from bots.models import Bot, Reconciliation
from controlplane import tenancy
from controlplane.errors import ControlPlaneError
from execution.models import StrategyPosition, VenueInventory
from tests.integrations.crypto_venues import (
    BTC_USD,
    FakeBinanceUS,
    FakeCoinbase,
    FakeHyperliquid,
    FakeKraken,
    booked,
    btc_usd,
    live_crypto_bot,
)

pytestmark = pytest.mark.django_db
SPOT = {"kraken": FakeKraken, "coinbase": FakeCoinbase, "binanceus": FakeBinanceUS}


@pytest.fixture
def serve(point_at, settings):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1

    def _serve(fake_class, **account):
        return fake_class(point_at(fake_class.name), **account)

    return _serve


def _reconcile(tenant, bot):
    with tenancy.tenant_context(tenant.id):
        return bot_reconcile(bot_id=bot.id, actor_name="test")


@pytest.mark.parametrize("venue", list(SPOT))
def test_a_spot_book_of_one_btc_matches_a_venue_holding_one_btc_and_cash(tenant_a, owner_a, serve, venue):
    """Regression: books {'BTC-USD': 1} against the venue's {'BTC': 1, 'USD': 5000} was a MISMATCH every time."""
    serve(SPOT[venue], balances={"BTC": 1, "USD": 5000, "ETH": 3})
    btc_usd(venue)
    bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue=venue)
    with tenancy.tenant_context(tenant_a.id):
        booked(bot, "BTC-USD", 1)
    result = _reconcile(tenant_a, bot)
    assert (result.status, result.internal_positions, result.venue_positions, result.differences) == (
        Reconciliation.Status.MATCHED,
        {"BTC-USD": 1.0},
        {"BTC-USD": 1.0},
        {},
    )


@pytest.mark.parametrize("venue", list(SPOT))
def test_a_spot_balance_short_of_the_book_is_a_difference_under_our_instrument(tenant_a, owner_a, serve, venue):
    serve(SPOT[venue], balances={"BTC": 0.4, "USD": 5000})
    btc_usd(venue)
    bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue=venue)
    with tenancy.tenant_context(tenant_a.id):
        booked(bot, "BTC-USD", 1)
    result = _reconcile(tenant_a, bot)
    assert result.status == Reconciliation.Status.MISMATCH
    assert result.differences == {"BTC-USD": {"internal": 1.0, "venue": 0.4}}
    with tenancy.tenant_context(tenant_a.id):
        assert Bot.objects.get(pk=bot.pk).reconcile_mismatch is True


def test_a_flat_book_with_the_base_asset_at_the_venue_is_a_difference_but_other_coins_are_not(tenant_a, owner_a, serve):
    serve(FakeKraken, balances={"BTC": 0.25, "ETH": 3, "USD": 100})
    btc_usd("kraken")
    bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken")
    result = _reconcile(tenant_a, bot)
    assert result.differences == {"BTC-USD": {"internal": 0.0, "venue": 0.25}}


def test_one_spot_balance_is_attributed_across_the_tenants_bots_through_the_inventory(tenant_a, owner_a, serve):
    fake = serve(FakeKraken, balances={"BTC": 1.5, "USD": 5000})
    btc_usd("kraken")
    first = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="first")
    second = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="second")
    with tenancy.tenant_context(tenant_a.id):
        booked(first, "BTC-USD", 1)
        booked(second, "BTC-USD", 0.5)
        booked(first, "BTC-USD", 2, venue="sim")  # paper: the sim venue's book, never the account's
    for bot, quantity in ((first, 1.0), (second, 0.5)):
        result = _reconcile(tenant_a, bot)
        assert (result.status, result.internal_positions, result.venue_positions) == (
            Reconciliation.Status.MATCHED,
            {"BTC-USD": quantity},
            {"BTC-USD": quantity},
        )

    fake.balances["BTC"] = 1.2  # 0.3 BTC left the account
    result = _reconcile(tenant_a, first)
    assert result.differences == {"BTC-USD": {"internal": 1.0, "venue": pytest.approx(0.7)}}


def test_accept_venue_on_a_shared_spot_account_moves_book_and_inventory_so_every_bot_matches(
    tenant_a, owner_a, serve, api_owner_a
):
    fake = serve(FakeKraken, balances={"BTC": 1.2, "USD": 5000})
    btc_usd("kraken")
    first = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="first")
    second = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="second")
    with tenancy.tenant_context(tenant_a.id):
        booked(first, "BTC-USD", 1)
        booked(second, "BTC-USD", 0.5)
    assert _reconcile(tenant_a, first).status == Reconciliation.Status.MISMATCH
    response = api_owner_a.post(
        f"/api/bots/{first.id}/reconcile/resolve",
        {"action": "accept_venue", "reason": "0.3 BTC was withdrawn by hand"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["followup"]["status"] == "MATCHED"
    with tenancy.tenant_context(tenant_a.id):
        assert StrategyPosition.objects.get(bot=first, book="live").quantity == Decimal("0.7")
        assert VenueInventory.objects.get(venue="kraken", asset="BTC-USD").quantity == Decimal("1.2")
    assert _reconcile(tenant_a, second).status == Reconciliation.Status.MATCHED
    assert fake.sent == []  # accepting sends nothing


def test_an_unmapped_instrument_is_not_reconciled_and_says_how_to_map_it(tenant_a, owner_a, serve):
    fake = serve(FakeKraken, balances={"BTC": 1, "USD": 5000})
    btc_usd()  # as shipped
    bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken")
    with pytest.raises(ControlPlaneError) as caught:
        _reconcile(tenant_a, bot)
    assert caught.value.code == "INSTRUMENT_NOT_MAPPED"
    assert "map_venue_symbols" in caught.value.suggested_fix and "--venue kraken" in caught.value.suggested_fix
    assert fake.paths == []
    with tenancy.tenant_context(tenant_a.id):
        assert not Reconciliation.objects.filter(bot=bot).exists()
        assert Bot.objects.get(pk=bot.pk).reconcile_mismatch is False


def test_hyperliquid_compares_signed_perpetual_positions_and_reports_one_no_instrument_maps(tenant_a, owner_a, serve):
    fake = serve(FakeHyperliquid, positions={"BTC": -0.02})
    btc_usd("hyperliquid")
    bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="hyperliquid")
    with tenancy.tenant_context(tenant_a.id):
        booked(bot, "BTC-USD", Decimal("-0.02"))
    result = _reconcile(tenant_a, bot)
    assert (result.status, result.internal_positions, result.venue_positions) == (
        Reconciliation.Status.MATCHED,
        {"BTC-USD": -0.02},
        {"BTC-USD": -0.02},
    )

    fake.positions["ETH"] = 1.5  # opened outside the bots, in a market none of our instruments maps
    result = _reconcile(tenant_a, bot)
    assert result.differences == {"ETH/USDC:USDC": {"internal": 0.0, "venue": 1.5}}


def test_the_shipped_mapping_fixture_is_what_each_venue_lists(tenant_a, owner_a, serve):
    """The mappings the tests store are the ones map_venue_symbols reads from each fake's market list."""
    from execution.marketdata.services import venue_symbols_map

    for fake_class in (*SPOT.values(), FakeHyperliquid):
        serve(fake_class)
        live_crypto_bot(tenant=tenant_a, owner=owner_a, venue=fake_class.name, name=f"bot-{fake_class.name}")
        explicit = "BTC/USDC:USDC" if fake_class.name == "hyperliquid" else None
        with tenancy.tenant_context(tenant_a.id):
            result = venue_symbols_map(venue=fake_class.name, symbols=["BTC-USD"], market=explicit, actor_name="test")
        assert result["mapped"] == {"BTC-USD": BTC_USD[fake_class.name]}


def test_the_live_reconcile_beat_matches_a_mapped_crypto_bot_and_reports_an_unmapped_one(tenant_a, owner_a, serve):
    from django.utils import timezone

    from bots.models import Runner
    from oversight import tasks
    from execution.models import Instrument

    serve(FakeKraken, balances={"BTC": 1, "ETH": 2, "USD": 5000})
    btc_usd("kraken")  # ETH-USD stays unmapped
    mapped = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="btc")
    unmapped = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue="kraken", name="eth", instruments=["ETH-USD"])
    with tenancy.tenant_context(tenant_a.id):
        booked(mapped, "BTC-USD", 1)
        for bot in (mapped, unmapped):
            Runner.objects.create(
                bot=bot,
                status=Runner.Status.RUNNING,
                started_by="test",
                started_at=timezone.now(),
                last_heartbeat_at=timezone.now(),
                trace_id="t-beat",
            )
    result = tasks.reconcile_live_bots.apply(kwargs={"tenant_id": tenant_a.id}).get()
    assert result["matched"] == [mapped.id] and result["mismatched"] == []
    [failed] = result["failed"]
    assert (failed["bot_id"], failed["error_code"]) == (unmapped.id, "INSTRUMENT_NOT_MAPPED")
    assert "ETH-USD" in failed["message"] and Instrument.objects.get(symbol="ETH-USD").venue_symbols == {}
