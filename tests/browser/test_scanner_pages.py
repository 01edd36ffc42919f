"""Scanner bots' pages in a browser (issue 18), after real scans on quotes collected through ccxt from local venue
servers: the spot scanner's arbitrage panel (its priced spreads and what its settled intent made) and the funding
scanner's basis PnL panel (an open pair with a funding payment booked, its exit still unknown)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane import tenancy
from execution.arbitrage.funding_services import book_funding_payments
from execution.arbitrage.pnl import settle_finished_intents
from execution.arbitrage.scanner import scan_tenant
from execution.arbitrage.services import paper_inventory_fund
from execution.marketdata.models import BasisQuote, FundingRate, SpotQuote
from execution.marketdata.quotes import QuoteCollector
from execution.models import ArbPnl
from execution.orders.oms import process_pending_intents
from tests.browser.conftest import SCREENSHOTS, login
from tests.execution.arb_helpers import SPOT, T1, collect, fund, scanner_bot
from tests.factories import InstrumentFactory
from tests.integrations.crypto_venues import BTC_USD, FakeCoinbase, FakeHyperliquid, FakeKraken, set_keys

STEP = timedelta(seconds=2)


def collect_with_basis(at) -> None:
    """A collector round whose quote and basis rows are a second old at ``at`` (the test moves the clock)."""
    newest_quote = SpotQuote.objects.order_by("-id").values_list("id", flat=True).first() or 0
    newest_basis = BasisQuote.objects.order_by("-id").values_list("id", flat=True).first() or 0
    QuoteCollector(hostname="collector-1").round()
    SpotQuote.objects.filter(id__gt=newest_quote).update(received_at=at - timedelta(seconds=1))
    BasisQuote.objects.filter(id__gt=newest_basis).update(received_at=at - timedelta(seconds=1))


@pytest.fixture
def btc(settings, httpserver):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_BASE_URLS = {v: httpserver.url_for("").rstrip("/") for v in (*SPOT, "hyperliquid")}
    settings.ARB_SCAN_INTERVAL_SECONDS = 2.0
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    return InstrumentFactory(
        symbol="BTC-USD", venue="COINBASE", asset_class="crypto", tick_size="0.01", multiplier="1", calendar="24/7"
    )


def map_btc(btc, venues) -> None:
    btc.venue_symbols = {v: BTC_USD[v] for v in venues}
    btc.save(update_fields=["venue_symbols"])


def test_a_spot_scanners_page_shows_its_spreads_and_what_its_arbitrage_made(
    page, console_server, console_people, shot, settings, httpserver, btc
):
    settings.ARB_TAKER_FEES = {"kraken": 0.001, "coinbase": 0.001}
    owner, tenant = console_people["owner"], console_people["tenant"]
    with tenancy.tenant_context(tenant.id):
        for venue in ("coinbase", "kraken"):
            set_keys(venue, owner)
    map_btc(btc, ("coinbase", "kraken"))
    FakeKraken(httpserver).set_book("BTC/USD", bid=50000.0, bid_size=0.5, ask=50010.0, ask_size=0.75)
    FakeCoinbase(httpserver).set_book("BTC/USD", bid=50300.0, bid_size=1.25, ask=50310.0, ask_size=2.0)
    collect(T1)
    bot = scanner_bot(tenant, owner)
    with tenancy.tenant_context(tenant.id):
        fund(owner, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        scan_tenant(as_of=T1, bots=[bot])
        process_pending_intents()
        for step in (1, 2):
            collect(T1 + step * STEP)
            scan_tenant(as_of=T1 + step * STEP, bots=[bot])
            settle_finished_intents()
        assert ArbPnl.objects.count() == 1

    login(page, console_server, "viewer-acme", f"/admin/bots/bot/{bot.id}/change/")
    panel = page.locator("#arbitrage")
    panel.wait_for()
    assert panel.locator("tr.arb-pnl").count() == 1
    assert panel.locator("tr.arb-spread").count() >= 2
    assert "kraken" in panel.inner_text() and "coinbase" in panel.inner_text()
    shot(page, "bot-page-spot-scanner")
    panel.screenshot(path=str(SCREENSHOTS / "bot-page-arbitrage-panel.png"))


def test_a_funding_scanners_page_shows_the_open_pair_its_funding_and_an_exit_not_yet_known(
    page, console_server, console_people, shot, settings, httpserver, btc
):
    settings.ARB_TAKER_FEES = {"coinbase": 0.0005, "hyperliquid": 0.00035}
    owner, tenant = console_people["owner"], console_people["tenant"]
    with tenancy.tenant_context(tenant.id):
        for venue in ("coinbase", "hyperliquid"):
            set_keys(venue, owner)
    map_btc(btc, ("coinbase", "hyperliquid"))
    FakeCoinbase(httpserver).set_book("BTC/USD", bid=50000.0, bid_size=1.0, ask=50001.0, ask_size=1.0)
    hyperliquid = FakeHyperliquid(httpserver)
    hyperliquid.set_book("BTC/USDC:USDC", bid=50010.0, bid_size=2.0, ask=50011.0, ask_size=2.0)
    hyperliquid.contexts["BTC"] = {"funding": "0.0002", "markPx": "50010.5", "oraclePx": "50000.5"}
    with tenancy.tenant_context(tenant.id):
        bot = bot_services.bot_create(
            actor=owner,
            name="funding",
            strategy="funding_arbitrage",
            parameters={"entry_threshold_bps": 5, "holding_hours": 24, "max_notional": 5000},
            instruments=["BTC-USD"],
        )
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.PAPER)
        paper_inventory_fund(venue="sim-coinbase", asset="USD", quantity=100_000, actor=owner)
        paper_inventory_fund(venue="sim-hyperliquid", asset="USDC", quantity=100_000, actor=owner)
        for step in (0, 1):  # the entry, then its fills on the sim twins
            collect_with_basis(T1 + step * STEP)
            scan_tenant(as_of=T1 + step * STEP, bots=[bot])
            process_pending_intents()
        rate = FundingRate.objects.get(venue="hyperliquid")
        BasisQuote.objects.filter(venue="hyperliquid").update(received_at=rate.funding_at - timedelta(seconds=1))
        assert book_funding_payments(as_of=rate.funding_at + timedelta(minutes=1)).booked == 1

    login(page, console_server, "viewer-acme", f"/admin/bots/bot/{bot.id}/change/")
    panel = page.locator("#basis-pnl")
    panel.wait_for()
    text = panel.inner_text()
    assert "OPEN" in text and "hyperliquid" in text
    assert page.locator("#arbitrage").count() == 0
    shot(page, "bot-page-funding-scanner")
    panel.screenshot(path=str(SCREENSHOTS / "bot-page-basis-pnl-panel.png"))
