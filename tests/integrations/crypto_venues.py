"""What the crypto venue tests share: each venue's test keys, BTC-USD's market at each venue, live bots and their
books. The fake venues themselves (Coinbase, Kraken, Binance.US and Hyperliquid in their documented REST shapes)
live with their providers: ``integrations/providers/<venue>/fake.py`` on ``integrations/providers/ccxt_fake.py``.
"""

from __future__ import annotations

from execution.models import Instrument
from integrations import services
from integrations.providers.binanceus.fake import FakeBinanceUS
from integrations.providers.ccxt_fake import FakeVenue
from integrations.providers.coinbase.fake import FakeCoinbase
from integrations.providers.hyperliquid.fake import FakeHyperliquid
from integrations.providers.kraken.fake import FakeKraken

KEYS = {
    "kraken": {"KRAKEN_API_KEY": "kr-abcdefghijkl", "KRAKEN_API_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0"},
    "coinbase": {"COINBASE_API_KEY": "cb-abcdefghijkl", "COINBASE_API_SECRET": "cb-secret-abcdefghijkl"},
    "binanceus": {"BINANCEUS_API_KEY": "bn-abcdefghijkl", "BINANCEUS_API_SECRET": "bn-secret-abcdefghijkl"},
    "hyperliquid": {"HYPERLIQUID_WALLET_ADDRESS": "0x" + "1" * 40, "HYPERLIQUID_PRIVATE_KEY": "0x" + "2" * 64},
}

# What each venue's market list yields for our BTC-USD (what map_venue_symbols stores).
BTC_USD = {
    "kraken": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "coinbase": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "binanceus": {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "type": "spot"},
    "hyperliquid": {"symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "type": "swap"},
}


def btc_usd(*venues: str) -> Instrument:
    """The shipped BTC-USD instrument, mapped at ``venues`` (none: unmapped, as a fresh install has it)."""
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {venue: BTC_USD[venue] for venue in venues}
    instrument.save(update_fields=["venue_symbols"])
    return instrument


def set_keys(venue: str, owner) -> None:
    services.credentials_set(provider=venue, values=KEYS[venue], actor=owner)


def live_crypto_bot(*, tenant, owner, venue: str, name: str = "live-btc", instruments=("BTC-USD",)):
    """A LIVE bot on ``venue`` at autonomy tier T3, with its keys set (not yet verified)."""
    from bots import services as bot_services
    from bots.models import Bot, Stage
    from controlplane import tenancy

    with tenancy.tenant_context(tenant.id):
        set_keys(venue, owner)
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=list(instruments),
            venue=venue,
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE, autonomy_tier=Bot.AutonomyTier.T3)
        bot.refresh_from_db()
    return bot


def booked(bot, symbol: str, quantity, *, venue: str | None = None) -> None:
    """What the OMS leaves after fills of ``quantity`` at the bot's venue: the bot's position and the tenant's
    inventory there (call inside the tenant's context)."""
    from decimal import Decimal

    from controlplane.books import book_for_venue
    from execution.models import StrategyPosition, VenueInventory

    venue = venue or bot.venue
    instrument = Instrument.objects.get(symbol=symbol)
    StrategyPosition.objects.update_or_create(
        tenant_id=bot.tenant_id,
        bot=bot,
        instrument=instrument,
        book=book_for_venue(venue),
        defaults={"quantity": Decimal(str(quantity)), "average_price": Decimal("50000")},
    )
    row, _ = VenueInventory.objects.get_or_create(
        tenant_id=bot.tenant_id, book=book_for_venue(venue), venue=venue, asset=symbol
    )
    row.quantity += Decimal(str(quantity))
    row.save(update_fields=["quantity", "updated_at"])


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
