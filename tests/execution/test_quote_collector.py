"""The quote collector through the real ccxt code and our venue clients, against the four venues' documented order
book and funding shapes (integrations/providers/<venue>/fake.py on one local server): quotes, funding and basis
written in bulk, proof of use per venue, the heartbeat, and one venue going stale while the others stay usable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from controlplane import tenancy
from controlplane.models import ProcessHeartbeat
from execution.marketdata.models import BasisQuote, FundingRate, SpotQuote
from execution.marketdata.quote_selectors import usable_quotes
from execution.marketdata.quotes import QuoteCollector, collector_users
from execution.models import Instrument
from integrations.models import IntegrationUsageEvent
from tests.integrations.crypto_venues import BTC_USD, FakeBinanceUS, FakeCoinbase, FakeHyperliquid, FakeKraken, set_keys
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db

VENUES = ("binanceus", "coinbase", "hyperliquid", "kraken")


@pytest.fixture
def venues(httpserver, settings, tenant_a, owner_a):
    """All four venues on one local server, configured by tenant A, BTC-USD mapped at each, each with a book."""
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_BASE_URLS = {v: httpserver.url_for("").rstrip("/") for v in VENUES}
    with tenancy.tenant_context(tenant_a.id):
        for venue in VENUES:
            set_keys(venue, owner_a)
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {v: BTC_USD[v] for v in VENUES}
    instrument.save(update_fields=["venue_symbols"])
    fakes = {
        "kraken": FakeKraken(httpserver),
        "coinbase": FakeCoinbase(httpserver),
        "binanceus": FakeBinanceUS(httpserver),
        "hyperliquid": FakeHyperliquid(httpserver),
    }
    fakes["kraken"].set_book("BTC/USD", bid=50000.0, bid_size=0.5, ask=50010.0, ask_size=0.75)
    fakes["coinbase"].set_book("BTC/USD", bid=50020.0, bid_size=1.25, ask=50030.0, ask_size=2.0)
    fakes["binanceus"].set_book("BTC/USD", bid=49980.0, bid_size=0.1, ask=49990.0, ask_size=0.2)
    fakes["hyperliquid"].set_book("BTC/USDC:USDC", bid=50100.0, bid_size=3.0, ask=50101.0, ask_size=4.0)
    fakes["hyperliquid"].contexts["BTC"] = {"funding": "0.0001", "markPx": "50120.0", "oraclePx": "50050.0"}
    return fakes


def test_a_round_writes_each_venues_top_of_book_funding_and_basis_with_proof_of_use(venues, tenant_a):
    outcomes = QuoteCollector(hostname="collector-1").round()

    assert {(o.venue, o.status, o.quotes) for o in outcomes} == {(v, "ok", 1) for v in VENUES}
    rows = {q.venue: q for q in SpotQuote.objects.all()}
    assert {v: (q.market, q.market_type, q.bid, q.ask, q.bid_size, q.ask_size) for v, q in rows.items()} == {
        "kraken": ("BTC/USD", "spot", Decimal("50000"), Decimal("50010"), Decimal("0.5"), Decimal("0.75")),
        "coinbase": ("BTC/USD", "spot", Decimal("50020"), Decimal("50030"), Decimal("1.25"), Decimal("2")),
        "binanceus": ("BTC/USD", "spot", Decimal("49980"), Decimal("49990"), Decimal("0.1"), Decimal("0.2")),
        "hyperliquid": ("BTC/USDC:USDC", "swap", Decimal("50100"), Decimal("50101"), Decimal("3"), Decimal("4")),
    }
    assert rows["coinbase"].venue_ts is not None and rows["hyperliquid"].venue_ts is not None
    funding = FundingRate.objects.get()
    assert (funding.venue, funding.rate, funding.funding_at.minute) == ("hyperliquid", Decimal("0.0001"), 0)
    basis = BasisQuote.objects.get()
    # Spot is the median of the three spot venues' mids (50005, 50025, 49985): 50005.
    assert (basis.mark, basis.index, basis.spot, basis.basis, basis.basis_bps, basis.spot_venues) == (
        Decimal("50120"),
        Decimal("50050"),
        Decimal("50005"),
        Decimal("115"),
        Decimal("22.9977"),
        ["binanceus", "coinbase", "kraken"],
    )
    with tenancy.tenant_context(tenant_a.id):
        used = IntegrationUsageEvent.objects.filter(operation__startswith="quotes.", status="ok")
        assert sorted(used.values_list("provider", "operation")) == [
            ("binanceus", "quotes.books"),
            ("coinbase", "quotes.books"),
            ("hyperliquid", "quotes.books"),
            ("hyperliquid", "quotes.funding"),
            ("kraken", "quotes.books"),
        ]
    beat = ProcessHeartbeat.objects.get(kind="quote_collector", hostname="collector-1")
    assert beat.queues == sorted(VENUES)
    assert [q.venue for q in usable_quotes().usable] == ["binanceus", "coinbase", "kraken"]


def test_a_venue_that_stops_answering_goes_stale_and_the_others_stay_usable(venues, tenant_a):
    collector = QuoteCollector(hostname="collector-1")
    collector.round()
    # Ten seconds pass (the first round's rows are moved back rather than the test waiting).
    SpotQuote.objects.update(received_at=SpotQuote.objects.get(venue="kraken").received_at - timedelta(seconds=10))
    venues["kraken"].books_down = True
    venues["coinbase"].set_book("BTC/USD", bid=50021.0, bid_size=1.0, ask=50031.0, ask_size=1.0)

    outcomes = {o.venue: o for o in collector.round()}

    assert (outcomes["kraken"].status, outcomes["kraken"].error_code) == ("failed", "INTEGRATION_UNREACHABLE")
    assert all(outcomes[v].status == "ok" for v in ("binanceus", "coinbase", "hyperliquid"))
    view = usable_quotes(max_age_ms=5000)
    assert [(q.venue, q.bid) for q in view.usable] == [("binanceus", Decimal("49980")), ("coinbase", Decimal("50021"))]
    (stale,) = view.unusable
    assert (stale.venue, str(stale.reason)) == ("kraken", "DATA_STALE")
    assert stale.age_ms >= 10000 and "kraken quote is" in stale.detail
    assert ProcessHeartbeat.objects.get(kind="quote_collector").queues == ["binanceus", "coinbase", "hyperliquid"]
    with tenancy.tenant_context(tenant_a.id):
        assert (
            IntegrationUsageEvent.objects.filter(provider="kraken", operation="quotes.books", status="error").count()
            == 1
        )


def test_no_venue_is_called_for_tenants_that_configured_none(httpserver, settings, tenant_a):
    settings.INTEGRATION_BASE_URLS = {"kraken": httpserver.url_for("").rstrip("/")}
    fake = FakeKraken(httpserver)
    instrument = Instrument.objects.get(symbol="BTC-USD")
    instrument.venue_symbols = {"kraken": BTC_USD["kraken"]}
    instrument.save(update_fields=["venue_symbols"])

    out = StringIO()
    call_command("collect_quotes", "--once", stdout=out)

    assert collector_users() == {}
    assert fake.paths == [] and SpotQuote.objects.count() == 0
    assert "nothing to collect" in out.getvalue()
    assert ProcessHeartbeat.objects.get(kind="quote_collector").queues == []


def test_collect_quotes_once_prints_each_venue(venues):
    out = StringIO()
    call_command("collect_quotes", "--once", stdout=out)
    assert "kraken: ok quotes=1 funding=0 basis=0" in out.getvalue()
    assert "hyperliquid: ok quotes=1 funding=1 basis=1" in out.getvalue()


def test_a_stale_collector_degrades_only_the_tenants_that_configured_a_crypto_venue(
    venues, tenant_a, tenant_b, settings
):
    from oversight.status import system_status

    settings.ARB_COLLECTOR_STALE_SECONDS = 30
    QuoteCollector(hostname="collector-1").round()

    def collector_issue(tenant):
        with tenancy.tenant_context(tenant.id):
            status = system_status()
        return status["quote_collector"], [b for b in status["blockers"] if b["component"] == "quotes.collector"]

    state, issues = collector_issue(tenant_a)
    assert issues == [] and state["stale"] is False and state["venues_answering"] == sorted(VENUES)
    assert collector_issue(tenant_b) == (None, [])  # tenant B configured no crypto venue

    ProcessHeartbeat.objects.filter(kind="quote_collector").update(
        last_seen_at=ProcessHeartbeat.objects.get(kind="quote_collector").last_seen_at - timedelta(seconds=31)
    )
    state, issues = collector_issue(tenant_a)
    assert state["stale"] is True
    assert [(i["code"], i["severity"]) for i in issues] == [("SERVICE_UNAVAILABLE", "degrading")]
    assert "quotes from coinbase, kraken, binanceus, hyperliquid are not being refreshed" in issues[0]["message"]
    assert collector_issue(tenant_b) == (None, [])


def test_the_observatory_lists_the_collected_quotes_basis_and_funding(venues, tenant_a):
    from django.contrib.auth.models import Permission
    from django.test import Client

    from controlplane.models import Membership
    from tests.factories import UserFactory

    QuoteCollector(hostname="collector-1").round()
    user = UserFactory(username="staff-quotes", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_spotquote", "view_basisquote", "view_fundingrate"])
    )
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    for path, expected in (("spotquote", "50101"), ("basisquote", "22.9977"), ("fundingrate", "0.000100000000")):
        page = client.get(f"/admin/execution/{path}/")
        assert page.status_code == 200, path
        assert expected in page.content.decode(), path


def test_a_market_the_venue_does_not_answer_is_reported_and_the_venues_other_markets_are_written(venues):
    eth = Instrument.objects.get(symbol="ETH-USD")
    eth.venue_symbols = {"kraken": {"symbol": "ETH/USD", "base": "ETH", "quote": "USD", "type": "spot"}}
    eth.save(update_fields=["venue_symbols"])  # mapped, but Kraken has no ETH book to give

    outcomes = {o.venue: o for o in QuoteCollector(hostname="collector-1").round()}

    assert outcomes["kraken"].status == "ok" and outcomes["kraken"].quotes == 1
    # Kraken answers {"error": ["EQuery:Unknown asset pair"]}; ccxt raises an ExchangeError for it.
    assert outcomes["kraken"].failed_markets == {"ETH/USD": "INTEGRATION_BAD_RESPONSE"}
    assert list(SpotQuote.objects.filter(venue="kraken").values_list("market", flat=True)) == ["BTC/USD"]
    view = usable_quotes(symbols=["ETH-USD"])
    assert [(u.venue, str(u.reason)) for u in view.unusable] == [("kraken", "DATA_UNAVAILABLE")]
