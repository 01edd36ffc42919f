"""Coinbase (Advanced Trade), Kraken, Binance.US and Hyperliquid as local HTTP servers, each answering ccxt in the
venue's documented REST shapes (the shapes ccxt's own parsers quote from the venues' API references), so tests
run the real ccxt code and our real client against an account kept in memory.

Each fake keeps what a venue keeps: its market list, the orders sent to it (with the client order id they
carried), the fills of those orders and the account's balances or positions. A test fills or cancels an order
the way the venue would (``fill``), then reads it back through the adapter.
"""

from tests.integrations.crypto_venues.base import BTC_USD, KEYS, FakeVenue, booked, btc_usd, live_crypto_bot, set_keys
from tests.integrations.crypto_venues.binanceus import FakeBinanceUS
from tests.integrations.crypto_venues.coinbase import FakeCoinbase
from tests.integrations.crypto_venues.hyperliquid import FakeHyperliquid
from tests.integrations.crypto_venues.kraken import FakeKraken

__all__ = [
    "BTC_USD",
    "KEYS",
    "FakeBinanceUS",
    "FakeCoinbase",
    "FakeHyperliquid",
    "FakeKraken",
    "FakeVenue",
    "booked",
    "btc_usd",
    "live_crypto_bot",
    "set_keys",
]
