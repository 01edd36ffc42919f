"""The OMS on a LIVE Tradovate bot against a local server in Tradovate's documented shapes: roots sent as the
front contract, uncertain sends left for the recovery sweep and resolved by lookup (never re-sent), broker fees
on fills (null when unreported), the scheduled live reconcile, and kills that cancel at the venue."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from werkzeug import Response

from bots import services as bot_services
from bots.models import CancelRequest, Reconciliation, Runner
from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.orders import cancels, oms, recovery
from oversight import tasks as oversight_tasks
from execution.orders.intents import LegSpec, submit_intent
from execution.models import Fill, Order, TradeIntent
from integrations.providers.futures_contracts import tradovate_symbol
from integrations.providers.tradovate.fake import ACCOUNT, fill, fill_fee, order_found, position, serve_session
from tests.conftest import present_second_factor
from tests.integrations.live_bots import es_instrument, live_tradovate_bot
from tests.status_fixtures import make_system_ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def tradovate(point_at, settings):
    settings.OMS_ENQUEUE_ON_SUBMIT = False
    return point_at("tradovate")


@pytest.fixture
def live_bot(tenant_a, owner_a, tradovate, httpserver, settings):
    """A LIVE Tradovate bot in a system whose status is OK (its venue verified), so it may open positions."""
    es_instrument()
    bot = live_tradovate_bot(tenant=tenant_a, owner=owner_a)
    serve_session(tradovate)
    make_system_ok(tenant=tenant_a, owner=owner_a, httpserver=httpserver, settings=settings, verify=("tradovate",))
    return bot


def _submit(bot, key="k1", price="6000.25"):
    return submit_intent(
        bot=bot,
        legs=[
            LegSpec(
                venue="tradovate",
                symbol="ES",
                side="buy",
                quantity=Decimal(1),
                order_type="limit",
                limit_price=Decimal(price),
            )
        ],
        idempotency_key=key,
        source="api",
        actor_name="test",
    ).intent


def _placed(server):
    return [json.loads(r.data) for r, _ in server.log if r.path == "/order/placeorder"]


def test_a_root_is_sent_as_its_front_contract_on_the_day_of_the_roll(tenant_a, live_bot, tradovate, monkeypatch):
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder", method="POST").respond_with_json({"orderId": 9001})
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 10, 15, tzinfo=UTC))  # ES roll day
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
    assert [p["symbol"] for p in _placed(tradovate)] == ["ESH7"]
    assert (order.status, order.venue_order_id) == (Order.Status.WORKING, "9001")


def test_an_uncertain_send_stays_submitting_and_the_sweep_resolves_it_without_sending_again(
    tenant_a, live_bot, tradovate, settings
):
    settings.INTEGRATION_TIMEOUT_SECONDS = 0.3
    serve_session(tradovate)

    def slow_place(request):
        time.sleep(0.6)  # Tradovate takes the order; its answer comes too late
        return Response(json.dumps({"orderId": 9002}), 200, content_type="application/json")

    tradovate.expect_request("/order/placeorder").respond_with_handler(slow_place)
    tradovate.expect_oneshot_request("/command/list").respond_with_json([])  # not visible yet
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
        assert (order.status, order.venue_order_id, order.error_code) == (
            Order.Status.SUBMITTING,
            "",
            "INTEGRATION_TIMEOUT",
        )
        assert "never re-sent" in order.reason
        assert recovery.resolve_unacknowledged_orders()["found"] == []  # younger than the recovery delay: untouched
        order_found(
            tradovate, client_order_id=order.client_order_id, order_id=9002, fills=[fill(31, 9002)], fees=[fill_fee(31)]
        )
        outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        order.refresh_from_db()
        intent.refresh_from_db()
        [recorded] = Fill.objects.filter(order=order)
        assert AuditEvent.objects.filter(action="order.recovered", resource_id=str(order.id)).exists()
    assert outcome["found"] == [order.client_order_id]
    assert (order.status, order.venue_order_id, order.filled_quantity) == (Order.Status.FILLED, "9002", 1)
    assert intent.status == TradeIntent.Status.FILLED
    assert (recorded.venue_fill_id, recorded.price, recorded.fee) == ("31", Decimal("6001.25"), Decimal("2.48"))
    assert order.fees == Decimal("2.48")
    assert len(_placed(tradovate)) == 1


def test_the_sweep_fails_an_order_the_venue_proves_it_never_received(tenant_a, live_bot, tradovate):
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder").respond_with_data("", status=502)  # a proxy answered
    tradovate.expect_request("/command/list").respond_with_json([])
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
        assert Order.objects.get(intent=intent).status == Order.Status.SUBMITTING
        outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        order = Order.objects.get(intent=intent)
        intent.refresh_from_db()
    assert outcome["not_found"] == [order.client_order_id]
    assert (order.status, order.error_code) == (Order.Status.FAILED, "NOT_FOUND_AT_VENUE")
    assert intent.status == TradeIntent.Status.FAILED
    assert len(_placed(tradovate)) == 1


def test_a_lookup_that_fails_leaves_the_order_for_the_next_sweep(tenant_a, live_bot, tradovate):
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder").respond_with_data("<html>", status=200)
    tradovate.expect_request("/command/list").respond_with_data("", status=503)
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
        outcome = recovery.resolve_unacknowledged_orders(older_than=timedelta(0))
        order = Order.objects.get(intent=intent)
    assert [u["order"] for u in outcome["unresolved"]] == [order.client_order_id]
    assert order.status == Order.Status.SUBMITTING and len(_placed(tradovate)) == 1


def test_live_fills_record_the_brokers_fee_and_null_when_it_reports_none(tenant_a, live_bot, tradovate):
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder").respond_with_json({"orderId": 9003})
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
        order = Order.objects.get(intent=intent)
        tradovate.expect_request("/command/list").respond_with_json(
            [{"id": 1, "orderId": 9003, "clOrdId": order.client_order_id, "commandType": "New"}]
        )
        tradovate.expect_request("/fill/list").respond_with_json([fill(41, 9003, qty=1), fill(42, 7777)])
        tradovate.expect_request("/fillFee/list").respond_with_json([])  # Tradovate has not reported the fee
        assert recovery.sync_live_fills() == {"recorded": 1, "failures": []}
        [recorded] = Fill.objects.filter(order=order)
        order.refresh_from_db()
    assert recorded.fee is None and order.status == Order.Status.FILLED and order.fees == 0


def test_the_recovery_and_reconcile_schedules_have_expiries(settings):
    for name in ("execution-oms-recover", "execution-reconcile-live"):
        entry = settings.CELERY_BEAT_SCHEDULE[name]
        assert 0 < entry["options"]["expires"] < entry["schedule"]


def test_the_live_reconcile_task_flags_a_running_live_bot_whose_venue_disagrees(tenant_a, live_bot, tradovate):
    serve_session(tradovate)
    tradovate.expect_request("/position/list").respond_with_json(
        [position(1, account_id=ACCOUNT["id"], contract_id=55, net_pos=2)]
    )
    tradovate.expect_request("/contract/item", query_string="id=55").respond_with_json(
        {"id": 55, "name": tradovate_symbol("ES"), "contractMaturityId": 1}
    )
    with tenancy.tenant_context(tenant_a.id):
        Runner.objects.create(
            bot=live_bot,
            status=Runner.Status.RUNNING,
            started_by="test",
            started_at=timezone.now(),
            last_heartbeat_at=timezone.now(),
            trace_id="t-reconcile",
        )
    result = oversight_tasks.reconcile_live_bots.apply(kwargs={"tenant_id": tenant_a.id}).get()
    assert result == {"matched": [], "mismatched": [live_bot.id], "failed": []}
    with tenancy.tenant_context(tenant_a.id):
        live_bot.refresh_from_db()
        [report] = Reconciliation.objects.filter(bot=live_bot)
        audit = AuditEvent.objects.get(action="bot.reconcile", resource_id=str(live_bot.id))
    assert live_bot.reconcile_mismatch is True
    assert report.differences == {"ES": {"internal": 0.0, "venue": 2.0}} and report.requested_by == "beat:reconcile"
    assert audit.after_state["reconcile_mismatch"] is True and audit.actor == "beat:reconcile"


def _serve_working_order_until_cancelled(tradovate, *, order_id: int, command_id: int) -> None:
    """Tradovate answers the order as Working until a cancel command for it arrives, Canceled after."""
    status = {"ordStatus": "Working"}
    tradovate.expect_request("/order/item", query_string=f"id={order_id}").respond_with_handler(
        lambda r: Response(
            json.dumps({"id": order_id, "accountId": 701, "action": "Buy", "admin": False, "timestamp": "x", **status}),
            200,
            content_type="application/json",
        )
    )
    tradovate.expect_request("/fill/deps").respond_with_json([])

    def cancel(request):
        status["ordStatus"] = "Canceled"
        return Response(json.dumps({"commandId": command_id}), 200, content_type="application/json")

    tradovate.expect_request("/order/cancelorder", method="POST").respond_with_handler(cancel)


def test_a_kill_cancels_the_bots_open_order_at_the_venue(
    tenant_a, owner_a, live_bot, tradovate, api_owner_a, django_capture_on_commit_callbacks
):
    serve_session(tradovate)
    tradovate.expect_request("/order/placeorder").respond_with_json({"orderId": 9004})
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
    _serve_working_order_until_cancelled(tradovate, order_id=9004, command_id=501)
    with django_capture_on_commit_callbacks(execute=True):  # the kill's cancel runs once the kill commits
        response = api_owner_a.post(f"/api/bots/{live_bot.id}/kill", {"reason": "venue test"}, format="json")
    assert response.status_code == 200, response.content
    cancels = [json.loads(r.data) for r, _ in tradovate.log if r.path == "/order/cancelorder"]
    assert cancels == [{"orderId": 9004, "isAutomated": True}]
    with tenancy.tenant_context(tenant_a.id):
        order = Order.objects.get(intent=intent)
        request = CancelRequest.objects.get(bot=live_bot)
        assert AuditEvent.objects.filter(action="cancel_request.process", resource_id=str(request.id)).exists()
    assert order.status == Order.Status.CANCELLED and order.cancelled_at is not None
    assert request.status == CancelRequest.Status.DONE and request.result["orders_cancelled"] == 1


def _tick_live_bot(tenant, bot):
    from execution.tick.batches import run_tick_batch
    from tests.execution.conftest import T0
    from tests.execution.helpers import store_bars
    from traces.models import NoTradeTrace

    es = es_instrument()
    store_bars(es, T0, 30)
    with tenancy.tenant_context(tenant.id):
        Runner.objects.create(
            bot=bot,
            status=Runner.Status.RUNNING,
            started_by="test",
            started_at=T0,
            last_heartbeat_at=T0,
            trace_id="t-tick",
        )
    run_tick_batch(instrument=es, timeframe="1m", as_of=T0 + timedelta(minutes=30), sync_oms=True)
    with tenancy.tenant_context(tenant.id):
        return list(NoTradeTrace.objects.filter(bot_id=bot.id)), TradeIntent.objects.filter(bot=bot).count()


def test_a_tick_on_a_live_bot_whose_venue_is_unreachable_is_a_no_trade_and_status_degrades(
    tenant_a, live_bot, settings
):
    from oversight.status import system_status
    from integrations import services

    settings.INTEGRATION_BASE_URLS = {"tradovate": "http://127.0.0.1:1"}  # nothing listens there
    with tenancy.tenant_context(tenant_a.id):
        assert services.verify_provider(provider="tradovate").error_code == "INTEGRATION_UNREACHABLE"
    [trace], intents = _tick_live_bot(tenant_a, live_bot)
    assert trace.reason_code == "INTEGRATION_MISSING" and intents == 0
    assert [(b["provider"], b["code"]) for b in trace.details["blockers"]] == [("tradovate", "INTEGRATION_UNREACHABLE")]
    with tenancy.tenant_context(tenant_a.id):
        status = system_status()
    assert status["status"] != "OK"
    assert any(
        "tradovate" in b["component"] and b["code"] == "INTEGRATION_UNREACHABLE" and b["severity"] == "degrading"
        for b in status["blockers"]
    )


def test_a_venue_failing_since_its_last_verify_stops_the_tick_through_its_open_breaker(
    tenant_a, live_bot, tradovate, settings
):
    from integrations import services
    from integrations.clients import client_for
    from integrations.providers.base import IntegrationError

    serve_session(tradovate)
    with tenancy.tenant_context(tenant_a.id):
        assert services.verify_provider(provider="tradovate").status == "ok"
        settings.INTEGRATION_BASE_URLS = {"tradovate": "http://127.0.0.1:1"}  # the venue goes away
        settings.INTEGRATION_BREAKER_FAIL_MAX = 1
        with pytest.raises(IntegrationError):
            client_for("tradovate").positions()
    [trace], intents = _tick_live_bot(tenant_a, live_bot)
    assert trace.reason_code == "INTEGRATION_MISSING" and intents == 0
    [blocker] = trace.details["blockers"]
    assert blocker["code"] == "INTEGRATION_UNREACHABLE" and "circuit breaker is open" in blocker["message"]


def test_a_live_start_is_refused_while_keys_are_missing_or_unverified(
    tenant_a, owner_a, api_operator_a, tradovate, settings
):
    from integrations import services

    es_instrument()
    with tenancy.tenant_context(tenant_a.id):
        bot = bot_services.bot_create(
            actor=owner_a,
            name="no-keys",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="tradovate",
            data_source="imported",
        )
        type(bot).objects.filter(pk=bot.pk).update(stage="LIVE")

    def start():
        response = api_operator_a.post("/api/runners/start", {"bot_id": bot.id}, format="json")
        return response.status_code, response.json()

    status, body = start()
    assert (status, body["error_code"]) == (409, "INTEGRATION_KEY_MISSING")
    assert body["details"]["blockers"][0]["missing_env_vars"]
    live_tradovate_bot(tenant=tenant_a, owner=owner_a, name="sets-the-keys")  # keys set, never verified
    status, body = start()
    assert (status, body["error_code"]) == (409, "INTEGRATION_UNVERIFIED")
    assert body["details"]["blockers"][0]["code"] == "INTEGRATION_UNVERIFIED"
    tradovate.expect_request("/auth/accesstokenrequest").respond_with_json({"errorText": "Access is denied"})
    with tenancy.tenant_context(tenant_a.id):
        assert services.verify_provider(provider="tradovate").error_code == "INTEGRATION_AUTH_FAILED"
    status, body = start()
    assert (status, body["error_code"]) == (409, "INTEGRATION_UNVERIFIED")
    assert body["details"]["blockers"][0]["code"] == "INTEGRATION_AUTH_FAILED"
    with tenancy.tenant_context(tenant_a.id):
        assert not Runner.objects.filter(bot=bot).exists()


def test_demoting_a_live_bot_cancels_its_order_at_tradovate_and_flags_what_the_account_still_holds(
    tenant_a, owner_a, live_bot, tradovate, api_owner_a, api_operator_a, django_capture_on_commit_callbacks
):
    """Leaving LIVE (issue 13, defect 2) against the fake Tradovate: today the order stays working there."""
    from bots.models import Stage
    from execution.models import RiskIncident
    from tests.execution.helpers import store_bars

    store_bars(es_instrument(), timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30), 5)
    place_ids = iter((9004, 9005))
    tradovate.expect_request("/order/placeorder", method="POST").respond_with_handler(
        lambda r: Response(json.dumps({"orderId": next(place_ids)}), 200, content_type="application/json")
    )
    with tenancy.tenant_context(tenant_a.id):
        intent = _submit(live_bot)
        oms.process_pending_intents()
    _serve_working_order_until_cancelled(tradovate, order_id=9004, command_id=502)
    # The account holds 2 ES (this bot's instrument) and -1 NQ (another bot's: not this bot's to answer for).
    tradovate.expect_request("/position/list").respond_with_json(
        [
            position(1, account_id=ACCOUNT["id"], contract_id=55, net_pos=2),
            position(2, account_id=ACCOUNT["id"], contract_id=56, net_pos=-1),
        ]
    )
    for contract_id, root in ((55, "ES"), (56, "NQ")):
        tradovate.expect_request("/contract/item", query_string=f"id={contract_id}").respond_with_json(
            {"id": contract_id, "name": tradovate_symbol(root), "contractMaturityId": 1}
        )

    with django_capture_on_commit_callbacks(execute=True):
        response = api_owner_a.post(
            f"/api/bots/{live_bot.id}/demote", {"to": "PAPER", "reason": "pause"}, format="json"
        )
    assert response.status_code == 200, response.content
    with tenancy.tenant_context(tenant_a.id):
        order = Order.objects.get(intent=intent)
        request = CancelRequest.objects.get(bot=live_bot)
        incident = RiskIncident.objects.get(bot=live_bot)
        assert cancels.process_pending_cancel_requests() == 0  # cancelled at most once
    assert [json.loads(r.data) for r, _ in tradovate.log if r.path == "/order/cancelorder"] == [
        {"orderId": 9004, "isAutomated": True}
    ]
    assert order.status == Order.Status.CANCELLED and request.status == CancelRequest.Status.DONE
    assert incident.kind == "UNMANAGED_LIVE_POSITION"
    assert incident.details["venue"] == "tradovate" and incident.details["held"] == {
        "ES": {"internal": 0.0, "venue": 2.0}
    }

    present_second_factor(api_owner_a)  # promotion to LIVE needs a fresh second factor
    refused = api_owner_a.post(f"/api/bots/{live_bot.id}/promote", {"to": "LIVE"}, format="json").json()
    assert "live_exit_resolved" in [g["gate"] for g in refused["details"]["gates"]]
    resolved = api_operator_a.post(
        f"/api/bots/{live_bot.id}/reconcile/resolve",
        {"action": "flatten", "reason": "close what LIVE left"},
        format="json",
    )
    assert resolved.status_code == 200, resolved.content
    placed = [json.loads(r.data) for r, _ in tradovate.log if r.path == "/order/placeorder"]
    assert [(p["symbol"], p["action"], p["orderQty"], p["orderType"]) for p in placed[1:]] == [
        (tradovate_symbol("ES"), "Sell", 2, "Market")
    ]  # the NQ of another bot is left alone
    with tenancy.tenant_context(tenant_a.id):
        incident.refresh_from_db()
        live_bot.refresh_from_db()
    assert incident.status == "RESOLVED" and live_bot.stage == Stage.PAPER
