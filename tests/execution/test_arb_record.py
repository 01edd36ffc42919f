"""A scanner bot's record where people read it: ``GET /api/bots/{id}/arb-pnl`` and ``/arb-spreads`` (tenant-scoped,
paginated, with freshness) and the arbitrage panel of the bot page; plus how the registry treats a quote strategy
(parameters validated field by field, listed with its kind, refused by the bar backtest), and the paper funding
service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bots.strategies import get_strategy
from controlplane import tenancy
from controlplane.errors import ControlPlaneError
from controlplane.models import AuditEvent
from execution.arbitrage.scanner import scan_tenant
from execution.arbitrage.services import paper_inventory_fund
from execution.models import ArbPnl, VenueInventory
from execution.orders.oms import process_pending_intents
from tests.conftest import client_for, console_client
from tests.execution.arb_helpers import T1, collect, fund, scanner_bot, venues  # noqa: F401
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def settled(venues, tenant_a, owner_a):
    """A paper scanner whose one intent filled on the sim twins and was settled into arb_pnl."""
    collect(T1)
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        fund(owner_a, kraken={"USD": 100_000}, coinbase={"BTC-USD": 1})
        scan_tenant(as_of=T1, bots=[bot])
        process_pending_intents()
        for step in (1, 2):
            at = T1 + timedelta(seconds=2 * step)
            collect(at)
            from execution.arbitrage.pnl import settle_finished_intents

            scan_tenant(as_of=at, bots=[bot])
            settle_finished_intents()
        assert ArbPnl.objects.count() == 1
    return bot


def test_arb_pnl_is_served_paginated_with_freshness_to_the_tenant_and_is_a_404_elsewhere(
    settled, owner_a, viewer_a, owner_b
):
    body = client_for(viewer_a).get(f"/api/bots/{settled.id}/arb-pnl").json()
    assert body["count"] == 1 and "as_of" in body and "degraded" in body
    [row] = body["results"]
    assert (row["buy_venue"], row["sell_venue"], row["intent_status"], row["book"]) == (
        "kraken",
        "coinbase",
        "FILLED",
        "paper",
    )
    assert Decimal(row["realized_edge"]) == Decimal("94.845") and Decimal(row["fees"]) == Decimal("50.155")
    assert row["expected_edge_bps"] is not None and row["edge_shortfall_bps"] is not None

    spreads = client_for(owner_a).get(f"/api/bots/{settled.id}/arb-spreads?limit=2").json()
    assert spreads["count"] > 2 and len(spreads["results"]) == 2 and spreads["next"]
    assert client_for(owner_a).get(f"/api/bots/{settled.id}/arb-spreads?limit=0").status_code == 400

    for path in ("arb-pnl", "arb-spreads"):
        other = client_for(owner_b).get(f"/api/bots/{settled.id}/{path}")
        assert other.status_code == 404 and other.json()["error_code"] == "NOT_FOUND"


def test_the_bot_page_shows_the_arbitrage_panel_for_scanners(settled, viewer_a):
    page = console_client(viewer_a).get(f"/admin/bots/bot/{settled.id}/change/").content.decode()
    assert 'id="arbitrage"' in page
    intent_id = ArbPnl.unscoped.values_list("intent_id", flat=True).get()
    assert f'<tr class="arb-pnl" data-intent="{intent_id}">' in page
    assert 'id="arb-realized-total">94.85<' in page.replace("\n", "").replace(" ", "")
    assert page.count('<tr class="arb-spread">') >= 3 and "inventory:" in page


def test_a_bar_bots_page_has_no_arbitrage_panel(settled, tenant_a, owner_a, viewer_a):
    from bots import services as bot_services

    with tenancy.tenant_context(tenant_a.id):
        bar_bot = bot_services.bot_create(
            actor=owner_a, name="bars", strategy="ma_crossover", parameters={}, instruments=["BTC-USD"]
        )
    page = console_client(viewer_a).get(f"/admin/bots/bot/{bar_bot.id}/change/").content.decode()
    assert 'id="arbitrage"' not in page


def test_a_quote_strategy_validates_each_field_lists_its_kind_and_is_refused_by_the_bar_backtest(tenant_a, owner_a):
    strategy = get_strategy("spot_arbitrage")
    with pytest.raises(ValueError) as caught:
        strategy.validate({"min_net_edge_bps": -1, "window_seconds": 0.5, "nope": 1})
    assert set(caught.value.errors) == {"min_net_edge_bps", "window_seconds", "nope"}
    listed = {s["name"]: s for s in client_for(owner_a).get("/api/strategies").json()}
    assert (listed["spot_arbitrage"]["kind"], listed["spot_arbitrage"]["market"]) == ("quotes", "spot")

    from bots import services as bot_services

    with tenancy.tenant_context(tenant_a.id), pytest.raises(ControlPlaneError) as refused:
        bot_services.bot_create(
            actor=owner_a,
            name="bad",
            strategy="spot_arbitrage",
            parameters={"max_quantity": 0},
            instruments=["BTC-USD"],
        )
    assert "max_quantity" in refused.value.details["parameters"]

    response = client_for(owner_a).post(
        "/api/backtests",
        {
            "strategy": "spot_arbitrage",
            "instruments": ["BTC-USD"],
            "timeframe": "1m",
            "start": "2026-11-01T00:00:00Z",
            "end": "2026-11-02T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400 and "scans quotes" in str(response.json()["details"]["strategy"])


def test_paper_funding_is_paper_only_validated_and_audited(tenant_a, owner_a):
    with tenancy.tenant_context(tenant_a.id):
        assert paper_inventory_fund(venue="sim-kraken", asset="USD", quantity="1000", actor=owner_a) == 1000
        for bad, field in (
            ({"venue": "kraken", "asset": "USD", "quantity": "1"}, "venue"),
            ({"venue": "sim-kraken", "asset": "", "quantity": "1"}, "asset"),
            ({"venue": "sim-kraken", "asset": "USD", "quantity": "lots"}, "quantity"),
            ({"venue": "sim-kraken", "asset": "USD", "quantity": "-1001"}, "quantity"),
        ):
            with pytest.raises(ControlPlaneError) as caught:
                paper_inventory_fund(actor=owner_a, **bad)
            assert field in caught.value.details
        assert VenueInventory.objects.get(venue="sim-kraken", asset="USD").quantity == 1000
        assert AuditEvent.objects.filter(action="inventory.paper_fund").count() == 1


def test_the_autonomy_score_of_a_paper_scanner_with_fills_is_computed_not_crashed(settled, tenant_a):
    """Regression: paper parity re-ran a bar backtest of the bot's strategy, and a quote strategy has no bars: the
    TypeError took the tenant's whole autonomy sweep down. Parity is unknown for a scanner (fail closed)."""
    from oversight.autonomy import autonomy_sweep, paper_parity

    with tenancy.tenant_context(tenant_a.id):
        parity = paper_parity(settled, now=T1 + timedelta(minutes=1))
        assert parity["parity"] is None and parity["paper_fills"] == 2 and "recorded quotes" in parity["reason"]
        assert settled.id in autonomy_sweep()


def test_the_supervisors_staleness_trigger_reads_a_scanners_quotes_not_bars(venues, tenant_a, owner_a):
    """Regression: the supervisor measured a running scanner's staleness on bars it never reads ("no bar at all"),
    a breach on fresh quotes that would have escalated it to a kill. It now measures the quotes the scan uses."""
    from bots import services as bot_services
    from django.utils import timezone

    from execution.marketdata.models import SpotQuote
    from oversight.supervisor.triggers import data_stale

    now = timezone.now()
    collect(now + timedelta(seconds=1))  # a round through ccxt, received at now
    bot = scanner_bot(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        bot_services.runner_start(bot_id=bot.id, actor=owner_a)
        fresh = data_stale(bot, {"stale_bars": 1}, now)
        assert fresh.breached is False and fresh.values["instruments"]["BTC-USD"]["usable_venues"] == 3
        SpotQuote.objects.update(received_at=now - timedelta(minutes=10))
        stale = data_stale(bot, {"stale_bars": 1}, now)
    assert stale.breached is True and stale.reason == "no usable quote for BTC-USD"
    assert stale.values["instruments"]["BTC-USD"]["freshest_quote_age_ms"] == 600_000
