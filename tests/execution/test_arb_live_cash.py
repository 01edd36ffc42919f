"""A LIVE spot scanner's cash at each venue comes from the venue (``live_cash_sync``): ``fetch_balance`` through
the real ccxt code against local servers speaking each venue's balance shapes; the base rows stay our fills'
(the live reconcile attributes a shared account through them); a venue that cannot answer changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode
from controlplane.models import AuditEvent
from execution.arbitrage.services import live_cash_sync
from execution.arbitrage.snapshot import book_inventory
from execution.models import VenueInventory
from tests.execution.arb_helpers import SPOT, venues  # noqa: F401
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("venue", SPOT)
def test_the_live_cash_at_a_spot_venue_is_what_its_account_holds_and_the_base_rows_stay_ours(
    venues, tenant_a, owner_a, venue
):
    venues[venue].balances = {"BTC": 2.0, "USD": 12345.5, "ETH": 3.0}
    with tenancy.tenant_context(tenant_a.id):
        VenueInventory.objects.create(book="live", venue=venue, asset="BTC-USD", quantity=Decimal("0.3"))
        VenueInventory.objects.create(book="live", venue=venue, asset="USD", quantity=Decimal("99"))
        assert live_cash_sync(venue=venue, actor=owner_a) == {"USD": Decimal("12345.5")}
        held = {(i.asset): i.quantity for i in VenueInventory.objects.filter(book="live", venue=venue)}
        assert held == {"BTC-USD": Decimal("0.3"), "USD": Decimal("12345.5")}  # BTC: our fills', not the account's
        assert book_inventory("live").holdings[(venue, "USD")] == Decimal("12345.5")
        event = AuditEvent.objects.filter(action="inventory.live_cash_sync").get()
        assert event.before_state == {"USD": "99.000000000"} and event.after_state["holdings"] == {"USD": "12345.5"}

        venues[venue].balances = {"BTC": 2.0}  # no USD listed: the venue answered, it holds none
        assert live_cash_sync(venue=venue, actor=owner_a) == {"USD": Decimal(0)}
        assert VenueInventory.objects.get(book="live", venue=venue, asset="USD").quantity == 0


def test_a_venue_without_keys_or_not_spot_changes_nothing_and_says_why(venues, tenant_a, owner_a, tenant_b):
    with tenancy.tenant_context(tenant_b.id), pytest.raises(ControlPlaneError) as missing:
        live_cash_sync(venue="kraken", actor_name="test")
    assert missing.value.code == ErrorCode.INTEGRATION_KEY_MISSING
    with tenancy.tenant_context(tenant_a.id), pytest.raises(ControlPlaneError) as perp:
        live_cash_sync(venue="hyperliquid", actor=owner_a)
    assert perp.value.code == ErrorCode.VALIDATION_ERROR and "venue" in perp.value.details
    assert (
        not VenueInventory.unscoped.exists()
        and not AuditEvent.unscoped.filter(action="inventory.live_cash_sync").exists()
    )


def test_beats_cash_sync_reads_the_venues_of_running_live_spot_scanners_only(venues, tenant_a, owner_a):
    from django.utils import timezone

    from bots.models import Runner, Stage
    from execution.arbitrage.cash_tasks import sync_live_cash_for_tenant
    from tests.execution.arb_helpers import scanner_bot

    for fake in venues.values():
        fake.balances = {"USD": 500.0}
    paper = scanner_bot(tenant_a, owner_a, name="paper")
    live = scanner_bot(tenant_a, owner_a, name="live", stage=Stage.LIVE)
    with tenancy.tenant_context(tenant_a.id):
        for bot in (paper, live):  # running live-mode runners, as runner_start leaves them
            Runner.objects.create(
                bot=bot, status=Runner.Status.RUNNING, started_by="test", started_at=timezone.now(), trace_id="t"
            )
    assert sync_live_cash_for_tenant(tenant_id=tenant_a.id) == {v: "synced" for v in SPOT}
    with tenancy.tenant_context(tenant_a.id):
        assert {(i.venue, i.asset): i.quantity for i in VenueInventory.objects.filter(book="live")} == {
            (v, "USD"): Decimal("500") for v in SPOT
        }
        Runner.objects.filter(bot=live).update(status=Runner.Status.STOPPED)
    assert sync_live_cash_for_tenant(tenant_id=tenant_a.id) == {}  # a PAPER scanner's cash is the paper book's
