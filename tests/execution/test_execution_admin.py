"""The execution observatory: every page renders the tenant's own rows only, nothing edits orders or fills, and an
incident is resolved through the same service as the API."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from controlplane import tenancy
from controlplane.models import AuditEvent, Membership
from execution.orders import oms
from execution.risk.breakers import drawdown_sweep_tenant
from execution.orders.intents import submit_intent
from execution.models import (
    EquityWatermark,
    Fill,
    Order,
    RiskIncident,
    StrategyPosition,
    TradeIntent,
    TradingControl,
    VenueInventory,
)
from execution.risk.services import trading_state_set
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy
from tests.factories import UserFactory
from traces.models import ProfitVariables

pytestmark = pytest.mark.django_db

MODELS = {
    "execution/tradeintent": TradeIntent,
    "execution/order": Order,
    "execution/fill": Fill,
    "execution/strategyposition": StrategyPosition,
    "execution/venueinventory": VenueInventory,
    "execution/tradingcontrol": TradingControl,
    "execution/riskincident": RiskIncident,
    "execution/equitywatermark": EquityWatermark,
    "traces/profitvariables": ProfitVariables,
}


def _trade(tenant, bot, es):
    """One filled buy through the OMS, a trading state, an incident and an equity mark: a row in every page."""
    with tenancy.tenant_context(tenant.id):
        submit_intent(bot=bot, legs=[buy("1")], idempotency_key="admin-1", source="tick", bar_ts=T0)
        oms.process_pending_intents()
        match_working_orders(instrument=es, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
        trading_state_set(bot_id=bot.id, state="REDUCE_ONLY", reason=f"{bot.name} review", actor_name="test")
        RiskIncident.objects.create(bot=bot, kind="max_position", details={}, trace_id="t")
        drawdown_sweep_tenant(now=T0 + timedelta(minutes=5))


@pytest.fixture
def books(tenant_a, tenant_b, owner_b, es_bars, trading_bot):
    ours = trading_bot(name="alpha-bot", risk_limits={"max_drawdown": 10_000})
    theirs = trading_bot(name="beta-secret", tenant=tenant_b, actor=owner_b, risk_limits={"max_drawdown": 10_000})
    _trade(tenant_a, ours, es_bars)
    _trade(tenant_b, theirs, es_bars)
    return ours, theirs


@pytest.fixture
def staff_of_a(tenant_a):
    user = UserFactory(username="staff-a", is_staff=True)
    codenames = [f"view_{path.split('/')[1]}" for path in MODELS] + ["view_bot"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    return client


def test_every_page_lists_and_shows_only_the_tenants_rows(staff_of_a, books, tenant_a, tenant_b):
    for path, model in MODELS.items():  # one setup for all pages: each OMS round trip costs
        changelist = staff_of_a.get(f"/admin/{path}/")
        assert changelist.status_code == 200, path
        rows = list(changelist.context["cl"].result_list)
        assert rows and {row.tenant_id for row in rows} == {tenant_a.id}, path
        assert "beta-secret" not in changelist.content.decode(), path
        if model is not VenueInventory and model is not ProfitVariables:
            assert "alpha-bot" in changelist.content.decode(), path

        detail = staff_of_a.get(f"/admin/{path}/{rows[0].pk}/change/")
        assert detail.status_code == 200 and "beta-secret" not in detail.content.decode(), path
        with tenancy.tenant_context(tenant_b.id):
            theirs = model.objects.order_by("pk").first()
        assert staff_of_a.get(f"/admin/{path}/{theirs.pk}/change/").status_code == 302, path  # → index


def test_orders_fills_and_intents_cannot_be_added_changed_or_deleted(tenant_a, books):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    client.post("/admin/switch-tenant/", {"tenant_id": tenant_a.id, "next": "/admin/"})
    for path in ("execution/order", "execution/fill", "execution/tradeintent"):
        with tenancy.tenant_context(tenant_a.id):
            pk = MODELS[path].objects.first().pk
        assert client.get(f"/admin/{path}/add/").status_code == 403, path
        assert client.post(f"/admin/{path}/{pk}/delete/", {"post": "yes"}).status_code == 403, path
        assert 'name="_save"' not in client.get(f"/admin/{path}/{pk}/change/").content.decode(), path
        assert "delete_selected" not in client.get(f"/admin/{path}/").content.decode(), path


def test_the_intent_page_shows_its_legs_and_orders_with_links(staff_of_a, books, tenant_a):
    ours, _ = books
    with tenancy.tenant_context(tenant_a.id):
        intent = TradeIntent.objects.get()
        order = Order.objects.get()
    page = staff_of_a.get(f"/admin/execution/tradeintent/{intent.pk}/change/").content.decode()
    assert order.client_order_id in page and f"/admin/bots/bot/{ours.id}/change/" in page
    orders = staff_of_a.get("/admin/execution/order/").content.decode()
    assert f"/admin/execution/tradeintent/{intent.pk}/change/" in orders


def test_the_resolve_action_calls_the_service(staff_of_a, books, tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        incident = RiskIncident.objects.get()
    response = staff_of_a.post(
        "/admin/execution/riskincident/", {"action": "resolve", "_selected_action": [incident.pk]}, follow=True
    )
    assert "resolved." in response.content.decode()
    again = staff_of_a.post(
        "/admin/execution/riskincident/", {"action": "resolve", "_selected_action": [incident.pk]}, follow=True
    )
    assert "ILLEGAL_TRANSITION" in again.content.decode()
    with tenancy.tenant_context(tenant_a.id):
        incident.refresh_from_db()
        event = AuditEvent.objects.get(action="risk_incident.resolve")
    assert incident.status == "RESOLVED" and incident.resolved_by == "staff-a"
    assert event.actor == "staff-a" and incident.resolution_note == "resolved in admin by staff-a"


def test_positions_show_their_book_and_a_stale_mark_says_stale(staff_of_a, books):
    """The position page names the book of every row, filters by it, and marks a stale price as STALE with its
    bar (the bars of T0 are days old now)."""
    page = staff_of_a.get("/admin/execution/strategyposition/").content.decode()
    assert "Paper (sim venue)" in page and "STALE 109.500000000 (1m bar 2026-11-18 15:09 UTC)" in page
    assert staff_of_a.get("/admin/execution/strategyposition/?book=live").context["cl"].result_list.count() == 0
    assert len(staff_of_a.get("/admin/execution/strategyposition/?book=paper").context["cl"].result_list) == 1
    for path in (
        "execution/venueinventory",
        "execution/equitywatermark",
        "traces/profitvariables",
        "execution/order",
        "execution/fill",
    ):
        assert "Paper (sim venue)" in staff_of_a.get(f"/admin/{path}/").content.decode(), path
    for path in ("execution/order", "execution/fill"):  # the book of a venue-only row, filtered by its venue
        assert len(staff_of_a.get(f"/admin/{path}/?book=paper").context["cl"].result_list) == 1, path
        assert len(staff_of_a.get(f"/admin/{path}/?book=live").context["cl"].result_list) == 0, path
