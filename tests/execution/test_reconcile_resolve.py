"""An operator resolves a reconcile mismatch on the sim venue: accept the venue's state, or flatten; the
endpoint's refusals (not flagged, unknown action, another tenant's bot, a kill switch); the same from the admin."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from bots import services as bot_services
from oversight.reconcile import bot_reconcile
from bots.models import Reconciliation
from controlplane import tenancy
from controlplane.models import AuditEvent, Membership
from controlplane.status import forget_cached_status
from execution.orders import oms
from execution.orders.intents import submit_intent
from execution.models import Bar, Order, StrategyPosition, TradeIntent
from execution.orders.paper_venue import match_working_orders
from tests.execution.conftest import T0, buy
from tests.execution.helpers import store_bars
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def _resolve(client, bot, action, reason="venue is right"):
    return client.post(f"/api/bots/{bot.id}/reconcile/resolve", {"action": action, "reason": reason}, format="json")


@pytest.fixture
def drifted_bot(tenant_a, owner_a, es_bars, trading_bot):
    """A bot that bought 3 ES on the sim venue whose books say ``books`` instead: flagged by a MISMATCH report."""

    def make(books: str = "2", average: str | None = None):
        bot = trading_bot()
        with tenancy.tenant_context(tenant_a.id):
            submit_intent(bot=bot, legs=[buy("3")], idempotency_key="a", source="tick", bar_ts=T0)
            oms.process_pending_intents()
            match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=T0 + timedelta(minutes=1))
            changes = {"quantity": Decimal(books)} | ({"average_price": Decimal(average)} if average else {})
            StrategyPosition.objects.filter(bot=bot).update(**changes)
            assert bot_reconcile(bot_id=bot.id, actor=owner_a).status == Reconciliation.Status.MISMATCH
        return bot

    return make


def test_accept_venue_sets_the_books_to_the_venues_and_clears_the_flag(api_operator_a, tenant_a, drifted_bot):
    bot = drifted_bot("2")
    with tenancy.tenant_context(tenant_a.id):
        average_before = StrategyPosition.objects.get(bot=bot).average_price
    forget_cached_status()
    response = _resolve(api_operator_a, bot, "accept_venue", "the sim fills are the truth")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["system_status"] == "BLOCKED" and body["degraded"] is True and body["as_of"]  # a fresh tenant
    assert body["resolved"]["resolution"] == "accept_venue" and body["resolved"]["resolved_by"] == "operator-a"
    assert body["resolved"]["resolution_reason"] == "the sim fills are the truth"
    assert body["followup"]["status"] == "MATCHED"
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        position = StrategyPosition.objects.get(bot=bot)
        report = Reconciliation.objects.get(pk=body["resolved"]["id"])
        event = AuditEvent.objects.get(action="bot.reconcile_resolve", resource_id=str(bot.id))
    assert bot.reconcile_mismatch is False
    assert (position.quantity, position.average_price) == (Decimal(3), average_before)  # same direction: kept
    assert report.resolved_at is not None and report.resolution_detail["followup_status"] == "MATCHED"
    assert event.before_state["positions"] == {"ES": {"quantity": "2.000000000", "average_price": str(average_before)}}
    assert event.after_state["positions"]["ES"]["quantity"] == "3.000000000"
    assert event.after_state["resolution"] == "accept_venue" and event.actor == "operator-a"
    assert not TradeIntent.objects.filter(source="reconcile").exists()


def test_accept_venue_prices_a_flipped_position_at_the_latest_complete_bar(api_operator_a, tenant_a, drifted_bot):
    bot = drifted_bot("-1", average="99")
    with tenancy.tenant_context(tenant_a.id):
        latest_close = Bar.objects.filter(instrument__symbol="ES").order_by("-ts").values_list("close", flat=True)[0]
    response = _resolve(api_operator_a, bot, "accept_venue")
    assert response.status_code == 200
    with tenancy.tenant_context(tenant_a.id):
        position = StrategyPosition.objects.get(bot=bot)
    assert (position.quantity, position.average_price) == (Decimal(3), latest_close)
    # The bars of T0 are days old: the price it took is said to be a stale mark, and the book is the sim's.
    detail = response.json()["resolved"]["resolution_detail"]
    assert detail["book"] == "paper" and response.json()["resolved"]["book"] == "paper"
    assert detail["positions"]["ES"]["average_price_from"] == f"stale mark 1m bar {(T0 + 9 * MINUTE).isoformat()}"


def test_accept_venue_without_a_bar_to_price_the_position_changes_nothing(api_operator_a, tenant_a, drifted_bot):
    bot = drifted_bot("-1", average="99")
    Bar.objects.all().delete()
    response = _resolve(api_operator_a, bot, "accept_venue")
    assert response.status_code == 409 and response.json()["error_code"] == "CONFLICT"
    assert response.json()["details"] == {"instruments": ["ES"]}
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        assert StrategyPosition.objects.get(bot=bot).quantity == Decimal(-1)
        assert Reconciliation.objects.filter(bot=bot).exclude(resolution="").count() == 0
    assert bot.reconcile_mismatch is True


def test_flatten_on_sim_sends_one_opposite_market_order_and_its_fill_brings_both_sides_to_flat(
    api_operator_a, tenant_a, owner_a, es_bars, drifted_bot
):
    bot = drifted_bot("2")
    response = _resolve(api_operator_a, bot, "flatten", "get out")
    assert response.status_code == 200, response.content
    assert response.json()["followup"]["status"] == "MATCHED"  # books took the venue's 3; the sell is working
    with tenancy.tenant_context(tenant_a.id):
        [order] = Order.objects.filter(intent__source="reconcile")
        assert (order.side, order.quantity, order.order_type, order.status) == ("sell", 3, "market", "WORKING")
        assert order.intent.status == "WORKING" and order.bot_id == bot.id
    # the sell arrived now: storing the next bar after now fills it at that bar's open, once
    next_bar = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    store_bars(es_bars, next_bar, 1)
    with tenancy.tenant_context(tenant_a.id):
        order.refresh_from_db()
        assert order.status == "FILLED" and order.average_price == es_bars.bars.get(ts=next_bar).open
        assert match_working_orders(instrument=es_bars, timeframe="1m", bar_ts=next_bar) == 0
        assert StrategyPosition.objects.get(bot=bot).quantity == 0
        assert bot_reconcile(bot_id=bot.id, actor=owner_a).is_flat is True
    # resolved once: a second resolution is refused and sends nothing
    assert _resolve(api_operator_a, bot, "flatten").status_code == 409
    with tenancy.tenant_context(tenant_a.id):
        assert Order.objects.filter(intent__source="reconcile").count() == 1


def test_a_tenant_kill_refuses_flatten_but_not_accept_venue(api_operator_a, tenant_a, drifted_bot):
    bot = drifted_bot("2")
    assert api_operator_a.post("/api/tenant/kill", {"reason": "halt"}, format="json").status_code == 200
    response = _resolve(api_operator_a, bot, "flatten")
    assert response.status_code == 409 and response.json()["error_code"] == "TENANT_KILLED"
    with tenancy.tenant_context(tenant_a.id):
        assert not Order.objects.filter(intent__source="reconcile").exists()
        assert StrategyPosition.objects.get(bot=bot).quantity == Decimal(2)
    assert _resolve(api_operator_a, bot, "accept_venue").status_code == 200


def test_a_system_kill_refuses_flatten(api_operator_a, tenant_a, drifted_bot, django_user_model):
    bot = drifted_bot("2")
    root = django_user_model.objects.create_superuser("root", password="pw-root-123456")
    bot_services.system_kill(actor=root, reason="exchange outage")
    response = _resolve(api_operator_a, bot, "flatten")
    assert response.status_code == 409 and response.json()["error_code"] == "SYSTEM_KILLED"


def test_refusals_not_flagged_unknown_action_missing_reason_viewer_and_other_tenant(
    api_operator_a, api_viewer_a, api_owner_b, tenant_a, trading_bot, drifted_bot
):
    clean = trading_bot(name="clean")
    response = _resolve(api_operator_a, clean, "accept_venue")
    assert response.status_code == 409 and response.json()["error_code"] == "ILLEGAL_TRANSITION"
    bot = drifted_bot("2")
    response = _resolve(api_operator_a, bot, "ignore")
    assert response.status_code == 400 and "action" in response.json()["details"]
    response = _resolve(api_operator_a, bot, "accept_venue", reason="")
    assert response.status_code == 400 and "reason" in response.json()["details"]
    assert _resolve(api_viewer_a, bot, "accept_venue").status_code == 403
    response = _resolve(api_owner_b, bot, "accept_venue")
    assert response.status_code == 404 and response.json()["error_code"] == "NOT_FOUND"
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        assert bot.reconcile_mismatch is True


def test_the_bot_admin_resolves_a_mismatch_through_the_same_service(tenant_a, drifted_bot):
    bot = drifted_bot("2")
    user = UserFactory(username="staff-a", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_bot"))
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)

    def act(action):
        response = client.post("/admin/bots/bot/", {"action": action, "_selected_action": [bot.id]}, follow=True)
        assert response.status_code == 200
        return response.content.decode()

    assert "accept the venue&#x27;s positions done." in act("resolve_accept_venue")
    with tenancy.tenant_context(tenant_a.id):
        bot.refresh_from_db()
        report = Reconciliation.objects.filter(bot=bot, status=Reconciliation.Status.MISMATCH).get()
        position = StrategyPosition.objects.get(bot=bot)
    assert bot.reconcile_mismatch is False and position.quantity == 3
    assert report.resolution == "accept_venue" and report.resolved_by == "staff-a"
    assert "ILLEGAL_TRANSITION" in act("resolve_flatten")  # nothing left to resolve
    assert "reconcile done." in act("reconcile")
