"""The ccxt adapter: ccxt's exception classes map to our codes (a timeout on create_order is uncertain and the
order is then found by its client order id). ccxt's exchange classes are subclassed to answer as the venue would
(our own code is not mocked). Verify and key permissions: tests/integrations/test_key_permissions.py."""

from decimal import Decimal

import ccxt
import pytest

from controlplane import tenancy
from integrations import services
from integrations.models import IntegrationUsageEvent
from integrations.venues.base import VenueError, VenueOrderRequest, VenueOrderStatus
from integrations.venues.registry import live_adapter_for
from tests.integrations.crypto_venues import BTC_USD, btc_usd

KEYS = {
    "kraken": {"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
    "coinbase": {"COINBASE_API_KEY": "cb-abcdefghijkl", "COINBASE_API_SECRET": "cb-secret-abcdefghijkl"},
    "binanceus": {"BINANCEUS_API_KEY": "bn-abcdefghijkl", "BINANCEUS_API_SECRET": "bn-secret-abcdefghijkl"},
    "hyperliquid": {
        "HYPERLIQUID_WALLET_ADDRESS": "0x" + "1" * 40,
        "HYPERLIQUID_PRIVATE_KEY": "0x" + "2" * 64,
        "HYPERLIQUID_ENVIRONMENT": "testnet",
    },
}


@pytest.fixture
def venue(tenant_a, owner_a, settings):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1

    def _venue(name, exchange):
        services.credentials_set(provider=name, values=KEYS[name], actor=owner_a)
        adapter = live_adapter_for(name, bot_id=11)
        adapter.client._exchange = exchange
        return adapter

    with tenancy.tenant_context(tenant_a.id):
        btc_usd("kraken", "hyperliquid")
        yield _venue


class Kraken(ccxt.kraken):
    """Kraken answering from memory: an order whose answer is lost, then found among open orders."""

    def __init__(self, create_error=None):
        super().__init__({"apiKey": "k", "secret": "c2VjcmV0"})
        self.create_error, self.created = create_error, []

    def create_order(self, symbol, type, side, amount, price=None, params={}):
        self.created.append({"symbol": symbol, "type": type, "side": side, "amount": amount, "price": price, **params})
        if self.create_error:
            raise self.create_error
        return {"id": "OABC-1", "clientOrderId": params["clientOrderId"], "status": "open", "filled": 0}

    def fetch_open_orders(self, symbol=None, since=None, limit=None, params={}):
        return [
            {
                "id": "OABC-1",
                "clientOrderId": c["clientOrderId"],
                "status": "open",
                "filled": 0.5,
                "average": 50000.0,
                "symbol": symbol,
            }
            for c in self.created
        ]

    def fetch_closed_orders(self, symbol=None, since=None, limit=None, params={}):
        return []


def _order(**overrides):
    fields = {
        "client_order_id": "intent-42",
        "symbol": "BTC-USD",
        "side": "buy",
        "quantity": Decimal("1"),
        "order_type": "limit",
        "limit_price": Decimal("50000"),
        "bot_id": 11,
        "venue_market": BTC_USD["kraken"],  # what the OMS passes from Instrument.venue_symbols
    }
    fields.update(overrides)
    return VenueOrderRequest(**fields)


@pytest.mark.django_db
def test_a_timeout_on_create_order_is_uncertain_and_lookup_finds_it_by_client_order_id(venue):
    exchange = Kraken(create_error=ccxt.RequestTimeout("kraken POST timed out"))
    adapter = venue("kraken", exchange)
    with pytest.raises(VenueError) as caught:
        adapter.place_order(_order())
    assert caught.value.code == "INTEGRATION_TIMEOUT" and caught.value.uncertain
    ack = adapter.lookup_order(client_order_id="intent-42")
    assert (ack.venue_order_id, ack.status, ack.filled_quantity) == (
        "OABC-1",
        VenueOrderStatus.PARTIALLY_FILLED,
        Decimal("0.5"),
    )
    assert len(exchange.created) == 1
    assert adapter.lookup_order(client_order_id="never-sent") is None
    events = IntegrationUsageEvent.objects.filter(provider="kraken").order_by("id")
    assert [(e.operation, e.status, e.bot_id) for e in events] == [
        ("order.place", "error", 11),
        ("order.find", "ok", 11),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "error,code,uncertain",
    [
        (ccxt.InsufficientFunds("kraken EOrder:Insufficient funds"), "ORDER_REJECTED", False),
        (ccxt.InvalidOrder("kraken EOrder:Invalid price"), "ORDER_REJECTED", False),
        (ccxt.AuthenticationError("kraken EAPI:Invalid key"), "INTEGRATION_AUTH_FAILED", False),
        (ccxt.RateLimitExceeded("kraken EAPI:Rate limit exceeded"), "INTEGRATION_RATE_LIMITED", False),
        (ccxt.ExchangeNotAvailable("kraken 503"), "INTEGRATION_UNREACHABLE", True),
    ],
)
def test_ccxt_errors_on_create_order_map_to_our_codes(venue, error, code, uncertain):
    adapter = venue("kraken", Kraken(create_error=error))
    with pytest.raises(VenueError) as caught:
        adapter.place_order(_order())
    assert (caught.value.code, caught.value.uncertain) == (code, uncertain)
    if code == "ORDER_REJECTED":
        assert "EOrder" in str(caught.value)  # the venue's reason travels


@pytest.mark.django_db
def test_each_venue_receives_a_client_order_id_in_its_accepted_form(venue):
    exchange = Kraken()
    venue("kraken", exchange).place_order(_order())
    assert exchange.created[0]["symbol"] == "BTC/USD"  # the mapped market, not our BTC-USD
    assert len(exchange.created[0]["clientOrderId"]) == 36
    hyper = venue("hyperliquid", Kraken())
    cloid = hyper.client.client_order_id("intent-42")
    assert cloid.startswith("0x") and len(cloid) == 34 and int(cloid, 16)
