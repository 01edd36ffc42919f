"""Tradovate: one shared session renewed before expiry, every 200 inspected, orders placed once and found again
by clOrdId after a lost answer. A local server answers in the shapes of Tradovate's documentation."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from werkzeug import Response

from controlplane import tenancy
from integrations import services
from integrations.models import IntegrationUsageEvent
from integrations.providers.tradovate.fake import position
from integrations.venues.base import VenueError, VenueOrderRequest, VenueOrderStatus
from integrations.venues.registry import live_adapter_for

CREDS = {
    "TRADOVATE_USERNAME": "alice",
    "TRADOVATE_PASSWORD": "pw-123456789012",
    "TRADOVATE_APP_ID": "cp",
    "TRADOVATE_APP_VERSION": "1.0",
    "TRADOVATE_CID": "42",
    "TRADOVATE_SECRET": "sec-abcdefghijkl",
    "TRADOVATE_ENVIRONMENT": "demo",
}
ACCOUNT = {"id": 701, "name": "DEMO701", "accountType": "Customer", "active": True}


def _expires(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def tradovate(tenant_a, owner_a, point_at):
    server = point_at("tradovate")
    with tenancy.tenant_context(tenant_a.id):
        services.credentials_set(provider="tradovate", values=CREDS, actor=owner_a)
        yield server


def _order(**overrides):
    fields = {
        "client_order_id": "intent-1",
        "symbol": "MESZ6",
        "side": "buy",
        "quantity": Decimal("1"),
        "order_type": "market",
        "bot_id": 5,
    }
    fields.update(overrides)
    return VenueOrderRequest(**fields)


def _login(server, token="tok-1", minutes=80):
    server.expect_request("/auth/accesstokenrequest", method="POST").respond_with_json(
        {"accessToken": token, "mdAccessToken": "md", "expirationTime": _expires(minutes), "userId": 7}
    )


@pytest.mark.django_db
def test_a_market_order_is_placed_once_with_our_client_order_id_and_is_automated(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_oneshot_request("/order/placeorder", method="POST").respond_with_json({"orderId": 9001})
    ack = live_adapter_for("tradovate", bot_id=5).place_order(_order())
    assert (ack.venue_order_id, ack.client_order_id, ack.status) == ("9001", "intent-1", VenueOrderStatus.WORKING)
    [placed] = [json.loads(r.data) for r, _ in tradovate.log if r.path == "/order/placeorder"]
    assert placed == {
        "accountSpec": "DEMO701",
        "accountId": 701,
        "clOrdId": "intent-1",
        "action": "Buy",
        "symbol": "MESZ6",
        "orderQty": 1,
        "orderType": "Market",
        "isAutomated": True,
    }
    events = IntegrationUsageEvent.objects.filter(provider="tradovate", operation="order.place")
    assert [(e.status, e.bot_id) for e in events] == [("ok", 5)]


@pytest.mark.django_db
def test_workers_share_one_session_and_renew_it_before_expiration(tradovate):
    _login(tradovate, token="tok-1", minutes=10)  # inside the 15-minute renewal window
    tradovate.expect_request("/auth/renewaccesstoken", headers={"Authorization": "Bearer tok-1"}).respond_with_json(
        {"accessToken": "tok-2", "expirationTime": _expires(80)}
    )
    seen = []
    tradovate.expect_request("/account/list").respond_with_handler(
        lambda r: (
            seen.append(r.headers["Authorization"]),
            Response(json.dumps([ACCOUNT]), 200, content_type="application/json"),
        )[1]
    )
    from integrations.clients import client_for

    client_for("tradovate").list_accounts()  # logs in: the token is near expiry
    client_for("tradovate").list_accounts()  # another "worker": renews the shared token
    client_for("tradovate").list_accounts()  # another: reuses the renewed token
    paths = [r.path for r, _ in tradovate.log]
    assert paths.count("/auth/accesstokenrequest") == 1 and paths.count("/auth/renewaccesstoken") == 1
    assert seen == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]


@pytest.mark.django_db
def test_a_refused_login_is_an_auth_failure_without_echoing_the_broker_text(tradovate):
    tradovate.expect_request("/auth/accesstokenrequest").respond_with_json(
        {"errorText": "Incorrect username or password for alice."}
    )
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert caught.value.code == "INTEGRATION_AUTH_FAILED" and not caught.value.uncertain
    assert "alice" not in str(caught.value)
    assert not [r for r, _ in tradovate.log if r.path == "/order/placeorder"]


@pytest.mark.django_db
def test_a_rejection_in_an_http_200_is_order_rejected_with_the_brokers_reason(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/placeorder").respond_with_json(
        {"failureReason": "RiskCheckTimeout", "failureText": "Risk check timed out"}
    )
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order(order_type="limit", limit_price=Decimal("5000.25")))
    assert caught.value.code == "ORDER_REJECTED" and not caught.value.uncertain
    assert "RiskCheckTimeout" in str(caught.value) and "Risk check timed out" in str(caught.value)


@pytest.mark.django_db
def test_violations_and_error_text_in_a_200_are_rejections(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/placeorder").respond_with_json(
        {"violations": [{"constraint": "orderQty", "value": "0", "description": "Quantity must be positive"}]}
    )
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert caught.value.code == "ORDER_REJECTED" and "Quantity must be positive" in str(caught.value)


@pytest.mark.django_db
def test_a_penalty_ticket_on_an_order_is_rate_limited_with_its_wait_and_not_resent(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/placeorder").respond_with_json({"p-ticket": "pt-1", "p-time": 7})
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert (caught.value.code, caught.value.retry_after, caught.value.uncertain) == (
        "INTEGRATION_RATE_LIMITED",
        7.0,
        False,
    )
    assert [r.path for r, _ in tradovate.log].count("/order/placeorder") == 1


@pytest.mark.django_db
def test_a_short_login_penalty_is_waited_out_and_the_login_resent_with_the_ticket(tradovate):
    bodies = []

    def login(request):
        bodies.append(json.loads(request.data))
        answer = (
            {"p-ticket": "pt-9", "p-time": 0}
            if len(bodies) == 1
            else {"accessToken": "tok-p", "expirationTime": _expires(80)}
        )
        return Response(json.dumps(answer), 200, content_type="application/json")

    tradovate.expect_request("/auth/accesstokenrequest").respond_with_handler(login)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    from integrations.clients import client_for

    assert client_for("tradovate").list_accounts() == [ACCOUNT]
    assert "p-ticket" not in bodies[0] and bodies[1]["p-ticket"] == "pt-9"


@pytest.mark.django_db
def test_http_429_is_rate_limited_for_an_hour_when_no_retry_after_is_sent(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/placeorder").respond_with_data("", status=429)
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert (caught.value.code, caught.value.retry_after, caught.value.uncertain) == (
        "INTEGRATION_RATE_LIMITED",
        3600.0,
        False,
    )


@pytest.mark.django_db
def test_a_malformed_answer_to_placeorder_is_uncertain(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/placeorder").respond_with_data("<html>proxy error</html>", status=200)
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert caught.value.code == "INTEGRATION_BAD_RESPONSE" and caught.value.uncertain


@pytest.mark.django_db
def test_a_timeout_after_send_is_uncertain_and_lookup_finds_the_order_by_clordid(tradovate, settings):
    settings.INTEGRATION_TIMEOUT_SECONDS = 0.3
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    placed = []

    def slow_place(request):
        placed.append(json.loads(request.data))
        time.sleep(0.6)  # the order is accepted, but the answer comes too late
        return Response(json.dumps({"orderId": 9002}), 200, content_type="application/json")

    tradovate.expect_request("/order/placeorder").respond_with_handler(slow_place)
    tradovate.expect_request("/command/list").respond_with_json(
        [
            {
                "id": 1,
                "orderId": 8000,
                "clOrdId": "other",
                "commandType": "New",
                "commandStatus": "RiskPassed",
                "timestamp": "2026-11-20T10:00:00Z",
            },
            {
                "id": 2,
                "orderId": 9002,
                "clOrdId": "intent-1",
                "commandType": "New",
                "commandStatus": "RiskPassed",
                "timestamp": "2026-11-20T10:00:01Z",
                "isAutomated": True,
            },
        ]
    )
    tradovate.expect_request("/order/item", query_string="id=9002").respond_with_json(
        {
            "id": 9002,
            "accountId": 701,
            "contractId": 55,
            "timestamp": "2026-11-20T10:00:01Z",
            "action": "Buy",
            "ordStatus": "Filled",
            "admin": False,
        }
    )
    tradovate.expect_request("/fill/deps", query_string="masterid=9002").respond_with_json(
        [
            {
                "id": 1,
                "orderId": 9002,
                "contractId": 55,
                "timestamp": "2026-11-20T10:00:01Z",
                "tradeDate": {"year": 2026, "month": 11, "day": 20},
                "action": "Buy",
                "qty": 1,
                "price": 6001.25,
                "active": True,
                "finallyPaired": 0,
            }
        ]
    )
    adapter = live_adapter_for("tradovate")
    with pytest.raises(VenueError) as caught:
        adapter.place_order(_order())
    assert caught.value.code == "INTEGRATION_TIMEOUT" and caught.value.uncertain
    ack = adapter.lookup_order(client_order_id="intent-1")
    assert (ack.venue_order_id, ack.status, ack.filled_quantity, ack.average_price) == (
        "9002",
        VenueOrderStatus.FILLED,
        Decimal("1"),
        Decimal("6001.25"),
    )
    assert len(placed) == 1
    assert adapter.lookup_order(client_order_id="never-sent") is None


@pytest.mark.django_db
def test_cancel_and_modify_and_positions(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT])
    tradovate.expect_request("/order/item").respond_with_json(
        {"id": 9003, "accountId": 701, "ordStatus": "Working", "action": "Sell", "timestamp": "x", "admin": False}
    )
    tradovate.expect_request("/fill/deps").respond_with_json([])
    tradovate.expect_request(
        "/order/cancelorder", method="POST", json={"orderId": 9003, "isAutomated": True}
    ).respond_with_json({"commandId": 77})
    tradovate.expect_request("/order/modifyorder", method="POST").respond_with_json(
        {"failureReason": "TooLate", "failureText": "Order already filled"}
    )
    tradovate.expect_request("/position/list").respond_with_json(
        [
            position(1, account_id=701, contract_id=55, net_pos=-2),
            position(2, account_id=999, contract_id=56, net_pos=3),
        ]
    )
    tradovate.expect_request("/contract/item", query_string="id=55").respond_with_json(
        {"id": 55, "name": "MESZ6", "contractMaturityId": 1}
    )
    adapter = live_adapter_for("tradovate")
    ack = adapter.cancel_order(client_order_id="intent-3", venue_order_id="9003")
    assert ack.venue_order_id == "9003"
    assert [r.path for r, _ in tradovate.log].count("/order/cancelorder") == 1
    from integrations.providers.base import IntegrationError

    with pytest.raises(IntegrationError) as caught:
        adapter.client.modify_order(
            order_id=9003, quantity=Decimal("1"), order_type="limit", limit_price=Decimal("6000")
        )
    assert caught.value.code == "ORDER_REJECTED" and "TooLate" in caught.value.message
    assert adapter.positions() == {"MES": Decimal("-2")}


@pytest.mark.django_db
def test_orders_tradovate_cannot_take_are_refused_before_anything_is_sent(tradovate):
    adapter = live_adapter_for("tradovate")
    for bad in (_order(quantity=Decimal("1.5")), _order(order_type="limit"), _order(order_type="trailing")):
        with pytest.raises(VenueError) as caught:
            adapter.place_order(bad)
        assert caught.value.code == "ORDER_REJECTED" and not caught.value.uncertain
    assert tradovate.log == []


@pytest.mark.django_db
def test_several_accounts_without_a_chosen_one_fail_closed(tradovate):
    _login(tradovate)
    tradovate.expect_request("/account/list").respond_with_json([ACCOUNT, {**ACCOUNT, "id": 702, "name": "D2"}])
    with pytest.raises(VenueError) as caught:
        live_adapter_for("tradovate").place_order(_order())
    assert caught.value.code == "INTEGRATION_KEY_MISSING"
    assert not [r for r, _ in tradovate.log if r.path == "/order/placeorder"]
