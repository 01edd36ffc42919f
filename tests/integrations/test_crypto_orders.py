"""Crypto venues trade the instrument's own market (issue 13, defect 3): the shipped BTC-USD is sent as the venue's
market from ``Instrument.venue_symbols``, an unmapped instrument is refused before anything is sent, and an order
is placed, looked up by our client order id, cancelled and its fills read back, through the real ccxt code
against each venue's REST shapes (tests/integrations/crypto_venues.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from oversight.reconcile import bot_reconcile
from bots.models import Reconciliation
from controlplane import tenancy
from execution.orders import oms, recovery
from execution.orders.intents import LegSpec, submit_intent
from execution.models import Fill, Instrument, Order, StrategyPosition, TradeIntent
from integrations.models import IntegrationUsageEvent
from integrations.venues.base import VenueError, VenueOrderRequest, VenueOrderStatus
from integrations.venues.registry import live_adapter_for
from tests.integrations.crypto_venues import (
    FakeBinanceUS,
    FakeCoinbase,
    FakeHyperliquid,
    FakeKraken,
    btc_usd,
    live_crypto_bot,
    set_keys,
)
from tests.status_fixtures import make_system_ok

FAKES = {"kraken": FakeKraken, "coinbase": FakeCoinbase, "binanceus": FakeBinanceUS, "hyperliquid": FakeHyperliquid}
# The venue's own market id of BTC-USD as it arrives in the order request.
SENT_MARKET = {
    "kraken": ("pair", "XXBTZUSD"),
    "coinbase": ("product_id", "BTC-USD"),
    "binanceus": ("symbol", "BTCUSD"),
    "hyperliquid": ("asset", 0),
}


@pytest.fixture
def venue(tenant_a, owner_a, point_at, settings):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1

    def _venue(name, **account):
        set_keys(name, owner_a)
        return FAKES[name](point_at(name), **account)

    with tenancy.tenant_context(tenant_a.id):
        yield _venue


def _order(client_order_id="cp-42-0", *, at: str, **overrides) -> VenueOrderRequest:
    """The request the OMS sends to venue ``at``: with the market stored for BTC-USD there, if any."""
    fields = {
        "venue_market": Instrument.objects.get(symbol="BTC-USD").venue_symbols.get(at),
        "client_order_id": client_order_id,
        "symbol": "BTC-USD",
        "side": "buy",
        "quantity": Decimal("0.01"),
        "order_type": "limit",
        "limit_price": Decimal("50000"),
        "bot_id": 11,
        "reference_price": Decimal("50000"),
    }
    fields.update(overrides)
    return VenueOrderRequest(**fields)


def _sent_market(fake, name):
    field, value = SENT_MARKET[name]
    [body] = fake.sent
    return fake.sent_market(body) if hasattr(fake, "sent_market") else body[field], value


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FAKES))
def test_an_order_is_placed_looked_up_filled_and_cancelled_at_the_instruments_venue_market(venue, name):
    fake = venue(name)
    btc_usd(name)
    adapter = live_adapter_for(name, bot_id=11)
    ack = adapter.place_order(_order(at=name))
    assert ack.status == VenueOrderStatus.WORKING
    sent, expected = _sent_market(fake, name)
    assert sent == expected  # the venue's own market id of BTC/USD, never our "BTC-USD"
    order_id = fake.by_client_id(adapter.client.client_order_id("cp-42-0"))
    assert ack.venue_order_id == order_id

    # An answer lost to a timeout is found again by the client order id it carried.
    found = live_adapter_for(name, bot_id=11).lookup_order(client_order_id="cp-42-0")
    assert (found.venue_order_id, found.status) == (order_id, VenueOrderStatus.WORKING)

    fake.fill(order_id, price=49990.0, fee=0.3)
    filled = live_adapter_for(name, bot_id=11).lookup_order(client_order_id="cp-42-0", venue_order_id=order_id)
    assert (filled.status, filled.filled_quantity) == (VenueOrderStatus.FILLED, Decimal("0.01"))
    [fill] = live_adapter_for(name, bot_id=11).fills_since(datetime.now(UTC) - timedelta(minutes=5))
    assert (fill.venue_order_id, fill.client_order_id, fill.quantity, fill.price, fill.fee) == (
        order_id,
        "cp-42-0",
        Decimal("0.01"),
        Decimal("49990.0"),
        Decimal("0.3"),
    )

    second = live_adapter_for(name, bot_id=11).place_order(_order("cp-43-0", at=name, limit_price=Decimal("48000")))
    cancelled = live_adapter_for(name, bot_id=11).cancel_order(
        client_order_id="cp-43-0", venue_order_id=second.venue_order_id
    )
    assert cancelled.status == VenueOrderStatus.CANCELLED
    assert fake.orders[second.venue_order_id]["status"] == "canceled"


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FAKES))
def test_an_unmapped_instrument_is_refused_before_anything_is_sent(venue, name):
    fake = venue(name)
    btc_usd()  # as shipped: no venue mapping
    with pytest.raises(VenueError) as caught:
        live_adapter_for(name, bot_id=11).place_order(_order(at=name))
    assert caught.value.code == "INSTRUMENT_NOT_MAPPED" and not caught.value.uncertain
    assert "BTC-USD" in str(caught.value) and name in str(caught.value) and "map_venue_symbols" in str(caught.value)
    assert fake.sent == [] and fake.paths == []
    assert not IntegrationUsageEvent.objects.filter(provider=name).exists()
    assert live_adapter_for(name, bot_id=11).lookup_order(client_order_id="cp-42-0") is None  # nothing in the ledger


@pytest.mark.django_db
def test_the_shipped_btc_usd_reaches_kraken_as_its_pair_not_as_our_symbol(venue):
    """Regression: today's adapter handed ccxt ``BTC-USD`` (no such Kraken market), so no order could be sent."""
    fake = venue("kraken")
    btc_usd("kraken")
    live_adapter_for("kraken", bot_id=11).place_order(_order(at="kraken"))
    [body] = fake.sent
    assert body["pair"] == "XXBTZUSD" and body["cl_ord_id"] == live_adapter_for("kraken").client.client_order_id(
        "cp-42-0"
    )


@pytest.mark.django_db
def test_a_coinbase_market_buy_is_sized_from_the_reference_price_and_carries_our_client_order_id(venue):
    fake = venue("coinbase")
    btc_usd("coinbase")
    adapter = live_adapter_for("coinbase", bot_id=11)
    adapter.place_order(_order(at="coinbase", order_type="market", limit_price=None))
    [body] = fake.sent
    assert body["order_configuration"] == {"market_market_ioc": {"quote_size": "500"}}
    assert body["client_order_id"] == adapter.client.client_order_id("cp-42-0")
    with pytest.raises(VenueError) as caught:
        adapter.place_order(
            _order("cp-44-0", at="coinbase", order_type="market", limit_price=None, reference_price=None)
        )
    assert caught.value.code == "ORDER_REJECTED" and len(fake.sent) == 1


@pytest.mark.django_db
def test_hyperliquid_signs_our_orders_only_no_builder_fee_approval_and_no_referrer(venue):
    """ccxt's Hyperliquid approves a fee for ccxt's builder address and sets a referrer on its first private call;
    neither may leave the owner's wallet."""
    fake = venue("hyperliquid")
    btc_usd("hyperliquid")
    live_adapter_for("hyperliquid", bot_id=11).place_order(_order(at="hyperliquid"))
    [action] = fake.actions
    assert action["type"] == "order" and "builder" not in action
    assert action["orders"][0]["c"] == live_adapter_for("hyperliquid").client.client_order_id("cp-42-0")


@pytest.fixture
def oms_venue(tenant_a, owner_a, point_at, httpserver, settings):
    """A LIVE T3 bot on the fake venue, with the system status OK (made from real components): what an opening
    live order needs, or it is refused with AUTONOMY_NOT_ALLOWED."""
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.OMS_ENQUEUE_ON_SUBMIT = False

    def _venue(name, **account):
        fake = FAKES[name](point_at(name), **account)
        bot = live_crypto_bot(tenant=tenant_a, owner=owner_a, venue=name)
        make_system_ok(tenant=tenant_a, owner=owner_a, httpserver=httpserver, settings=settings, verify=(name,))
        fake.paths.clear()  # what verify asked; a test's assertions are about what the OMS sent afterwards
        return fake, bot

    return _venue


def _submit(bot, key="k1"):
    return submit_intent(
        bot=bot,
        legs=[
            LegSpec(
                venue=bot.venue,
                symbol="BTC-USD",
                side="buy",
                quantity=Decimal("0.01"),
                order_type="limit",
                limit_price=Decimal("50000"),
            )
        ],
        idempotency_key=key,
        source="api",
        actor_name="test",
    ).intent


def test_a_live_kraken_bot_trades_btc_usd_through_the_oms_and_then_reconciles_flat_of_differences(tenant_a, oms_venue):
    fake, bot = oms_venue("kraken", balances={"USD": 5000})
    btc_usd("kraken")
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot)
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
        assert (order.status, order.venue_order_id) == (
            Order.Status.WORKING,
            fake.by_client_id(live_adapter_for("kraken").client.client_order_id(order.client_order_id)),
        )
        assert [body["pair"] for body in fake.sent] == ["XXBTZUSD"]
        fake.fill(order.venue_order_id, price=49995.0, fee=1.3)
        fake.balances.update(BTC=0.01, USD=5000 - 499.95 - 1.3)
        assert recovery.sync_live_fills() == {"recorded": 1, "failures": []}
        fill = Fill.objects.get(order=order)
        assert (fill.quantity, fill.price, fill.fee) == (Decimal("0.01"), Decimal("49995"), Decimal("1.3"))
        assert StrategyPosition.objects.get(bot=bot).quantity == Decimal("0.01")
        result = bot_reconcile(bot_id=bot.id, actor_name="test")
    assert (result.status, result.internal_positions, result.venue_positions) == (
        Reconciliation.Status.MATCHED,
        {"BTC-USD": 0.01},
        {"BTC-USD": 0.01},
    )


@pytest.mark.parametrize("name", ["kraken", "hyperliquid"])
def test_the_oms_fails_an_order_for_an_unmapped_instrument_with_its_fix_and_sends_nothing(tenant_a, oms_venue, name):
    fake, bot = oms_venue(name)
    btc_usd()
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(bot)
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
        intent.refresh_from_db()
    assert (order.status, order.error_code, intent.status) == (
        Order.Status.FAILED,
        "INSTRUMENT_NOT_MAPPED",
        TradeIntent.Status.FAILED,
    )
    assert f"--venue {name} --instrument BTC-USD" in order.reason
    assert fake.sent == [] and fake.paths == []


@pytest.mark.django_db
def test_a_fee_charged_in_another_coin_is_unknown_not_a_quote_amount(venue):
    fake = venue("binanceus")
    btc_usd("binanceus")
    ack = live_adapter_for("binanceus", bot_id=11).place_order(_order(at="binanceus"))
    fake.fill(ack.venue_order_id, price=50000.0, fee=0.0012)
    fake.fee_asset = "BNB"  # paid with BNB at a discount: not USD
    [fill] = live_adapter_for("binanceus", bot_id=11).fills_since(datetime.now(UTC) - timedelta(minutes=5))
    assert (fill.quantity, fill.fee) == (Decimal("0.01"), None)
