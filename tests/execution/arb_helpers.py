"""What the arbitrage scanner tests share: the three spot venues on one local server (the real ccxt code against
their documented order-book shapes, integrations/providers/<venue>/fake.py), a collector round dated by the test,
scanner bots and their paper funding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane import tenancy
from execution.arbitrage.scanner import SCAN_INSTRUMENT
from execution.arbitrage.services import paper_inventory_fund
from execution.marketdata.models import SpotQuote
from execution.marketdata.quotes import QuoteCollector
from execution.models import Instrument, TradeIntent
from traces.models import TickTrace
from tests.integrations.crypto_venues import BTC_USD, FakeBinanceUS, FakeCoinbase, FakeKraken, set_keys

SPOT = ("binanceus", "coinbase", "kraken")
FEES = {"kraken": 0.001, "coinbase": 0.001, "binanceus": 0.001}
# A scan grid point of today (quote partitions are by day and today's always exists), on a window boundary.
T1 = datetime.now(UTC).replace(hour=0, minute=0, second=10, microsecond=0)


@pytest.fixture
def venues(httpserver, settings, tenant_a, owner_a):
    """The three spot venues on one local server, configured by tenant A, BTC-USD mapped at each."""
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_BASE_URLS = {v: httpserver.url_for("").rstrip("/") for v in SPOT}
    settings.ARB_TAKER_FEES = FEES
    settings.ARB_SCAN_INTERVAL_SECONDS = 2.0
    with tenancy.tenant_context(tenant_a.id):
        for venue in SPOT:
            set_keys(venue, owner_a)
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {v: BTC_USD[v] for v in SPOT}
    instrument.save(update_fields=["venue_symbols"])
    fakes = {
        "kraken": FakeKraken(httpserver),
        "coinbase": FakeCoinbase(httpserver),
        "binanceus": FakeBinanceUS(httpserver),
    }
    # Kraken's ask is 290 below Coinbase's bid (58 bps); Binance.US sits between them.
    fakes["kraken"].set_book("BTC/USD", bid=50000.0, bid_size=0.5, ask=50010.0, ask_size=0.75)
    fakes["coinbase"].set_book("BTC/USD", bid=50300.0, bid_size=1.25, ask=50310.0, ask_size=2.0)
    fakes["binanceus"].set_book("BTC/USD", bid=50200.0, bid_size=0.1, ask=50210.0, ask_size=0.2)
    return fakes


def collect(at: datetime, *, only: tuple[str, ...] | None = None) -> None:
    """One collector round through ccxt; its rows are dated ``at`` minus a second (a quote is a second old when the
    scan at ``at`` reads it), so the test controls the clock instead of waiting."""
    newest = SpotQuote.objects.order_by("-id").values_list("id", flat=True).first() or 0
    QuoteCollector(hostname="collector-1").round()
    fresh = SpotQuote.objects.filter(id__gt=newest)
    if only is not None:
        fresh.exclude(venue__in=only).delete()
    fresh.update(received_at=at - timedelta(seconds=1))


def scanner_bot(tenant, owner, *, name="arb", stage=Stage.PAPER, **params) -> Bot:
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="spot_arbitrage",
            parameters={"min_net_edge_bps": 10, "max_quantity": 0.5, "window_seconds": 60, **params},
            instruments=["BTC-USD"],
        )
        Bot.objects.filter(pk=bot.pk).update(stage=stage)
        bot.refresh_from_db()
    return bot


def fund(owner, **holdings) -> None:
    """Paper holdings by sim twin: fund(owner, kraken={"USD": 100000}, coinbase={"BTC-USD": 1})."""
    for venue, assets in holdings.items():
        for asset, quantity in assets.items():
            paper_inventory_fund(venue=f"sim-{venue}", asset=asset, quantity=quantity, actor=owner)


def trace_of(bot, at, context="tick") -> TickTrace:
    return TickTrace.objects.get(bot_id=bot.id, bar_ts=at, instrument=SCAN_INSTRUMENT, context=context)


def legs_of(intent: TradeIntent) -> list[tuple]:
    return [
        (leg.venue, leg.side, leg.quantity, leg.order_type, leg.limit_price)
        for leg in intent.legs.order_by("leg_index")
    ]
