"""Ironbeam: verify refuses the wrong environment; orders, rejections, 429 and a lost answer resolved from the
order list by fingerprint. A local server answers in the shapes of Ironbeam's OpenAPI document."""

import json
import time
from decimal import Decimal

import pytest
from werkzeug import Response

from controlplane import tenancy
from integrations import services
from integrations.venues.base import VenueError, VenueOrderRequest, VenueOrderStatus
from integrations.venues.registry import live_adapter_for

CREDS = {"IRONBEAM_USERNAME": "bob", "IRONBEAM_API_KEY": "ib-abcdefghijkl", "IRONBEAM_ENVIRONMENT": "demo"}
OK = {"status": "OK", "message": "OK"}


def _trader(live=False, accounts=("51234",)):
    return {**OK, "accounts": list(accounts), "isLive": live, "traderId": "bob"}


@pytest.fixture
def ironbeam(tenant_a, owner_a, point_at):
    server = point_at("ironbeam")
    server.expect_request("/auth", method="POST").respond_with_json({**OK, "token": "ib-tok"})
    with tenancy.tenant_context(tenant_a.id):
        services.credentials_set(provider="ironbeam", values=CREDS, actor=owner_a)
        yield server


def _order(**overrides):
    fields = {
        "client_order_id": "intent-7",
        "symbol": "XCME:MES.Z26",
        "side": "sell",
        "quantity": Decimal("2"),
        "order_type": "limit",
        "limit_price": Decimal("6010.5"),
        "bot_id": 3,
    }
    fields.update(overrides)
    return VenueOrderRequest(**fields)


def _row(order_id, strategy_id, status="NEW", **overrides):
    row = {
        "orderId": order_id,
        "strategyId": strategy_id,
        "accountId": "51234",
        "exchSym": "XCME:MES.Z26",
        "status": status,
        "side": "SELL",
        "quantity": 2,
        "limitPrice": 6010.5,
        "orderType": "2",
        "duration": "0",
        "fillQuantity": 0,
    }
    row.update(overrides)
    return row


@pytest.mark.django_db
@pytest.mark.parametrize(
    "configured,is_live,ok",
    [("demo", False, True), ("live", True, True), ("live", False, False), ("demo", True, False)],
)
def test_verify_refuses_a_demo_account_configured_as_live_and_the_reverse(ironbeam, owner_a, configured, is_live, ok):
    services.credentials_set(provider="ironbeam", values={**CREDS, "IRONBEAM_ENVIRONMENT": configured}, actor=owner_a)
    ironbeam.expect_request("/info/trader").respond_with_json(_trader(live=is_live))
    result = services.verify_provider(provider="ironbeam", actor_name="test")
    assert (result.error_code or None) == (None if ok else "INTEGRATION_ENVIRONMENT_MISMATCH")


@pytest.mark.django_db
def test_an_order_is_placed_on_the_account_in_the_documented_shape(ironbeam):
    ironbeam.expect_request("/info/trader").respond_with_json(_trader())
    ironbeam.expect_request("/order/51234/ANY").respond_with_json({**OK, "orders": []})
    ironbeam.expect_oneshot_request("/order/51234/place", method="POST").respond_with_json(
        {**OK, "orderId": "51234-1001", "strategyId": 1001}
    )
    ack = live_adapter_for("ironbeam", bot_id=3).place_order(_order())
    assert (ack.venue_order_id, ack.status) == ("51234-1001", VenueOrderStatus.WORKING)
    [body] = [json.loads(r.data) for r, _ in ironbeam.log if r.path.endswith("/place")]
    assert body == {
        "accountId": "51234",
        "exchSym": "XCME:MES.Z26",
        "side": "SELL",
        "quantity": 2.0,
        "orderType": "2",
        "duration": "0",
        "waitForOrderId": True,
        "limitPrice": 6010.5,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer",
    [
        Response(
            json.dumps({"status": "ERROR", "message": "Insufficient margin", "error": "Insufficient margin"}),
            200,
            content_type="application/json",
        ),
        Response(
            json.dumps({"status": "ERROR", "error": "Invalid symbol XCME:MES.Z26"}),
            400,
            content_type="application/json",
        ),
    ],
)
def test_a_refused_order_is_order_rejected_with_ironbeams_reason(ironbeam, answer):
    ironbeam.expect_request("/info/trader").respond_with_json(_trader())
    ironbeam.expect_request("/order/51234/ANY").respond_with_json({**OK, "orders": []})
    ironbeam.expect_request("/order/51234/place").respond_with_response(answer)
    with pytest.raises(VenueError) as caught:
        live_adapter_for("ironbeam").place_order(_order())
    assert caught.value.code == "ORDER_REJECTED" and not caught.value.uncertain
    assert "Insufficient margin" in str(caught.value) or "Invalid symbol" in str(caught.value)


@pytest.mark.django_db
def test_429_carries_retry_after_and_a_refused_key_is_an_auth_failure(tenant_a, owner_a, point_at):
    server = point_at("ironbeam")
    server.expect_ordered_request("/auth").respond_with_json({**OK, "token": "t"})
    server.expect_ordered_request("/info/trader").respond_with_data(
        json.dumps({"status": "ERROR", "error": "Too Many Requests"}), status=429, headers={"Retry-After": "12"}
    )
    server.expect_ordered_request("/auth").respond_with_data(
        json.dumps({"status": "ERROR", "error": "Invalid API key"}), status=401
    )
    with tenancy.tenant_context(tenant_a.id):
        services.credentials_set(provider="ironbeam", values=CREDS, actor=owner_a)
        with pytest.raises(VenueError) as caught:
            live_adapter_for("ironbeam").place_order(_order())
        assert (caught.value.code, caught.value.retry_after) == ("INTEGRATION_RATE_LIMITED", 12.0)
        with pytest.raises(VenueError) as caught:
            live_adapter_for("ironbeam").place_order(_order())
        assert caught.value.code == "INTEGRATION_AUTH_FAILED"


@pytest.mark.django_db
def test_a_malformed_body_is_a_bad_response(ironbeam):
    ironbeam.expect_request("/info/trader").respond_with_data("not json", status=200)
    with pytest.raises(VenueError) as caught:
        live_adapter_for("ironbeam").positions()
    assert caught.value.code == "INTEGRATION_BAD_RESPONSE"


@pytest.mark.django_db
def test_a_timeout_after_send_is_uncertain_and_lookup_finds_the_one_new_matching_order(ironbeam, settings):
    settings.INTEGRATION_TIMEOUT_SECONDS = 0.3
    ironbeam.expect_request("/info/trader").respond_with_json(_trader())
    state = {"placed": 0}

    def orders(request):
        rows = [_row("51234-900", 900)]  # an older identical order: not ours
        if state["placed"]:
            rows.append(_row("51234-1002", 1002, status="FILLED", fillQuantity=2, fillPrice=6010.5))
        return Response(json.dumps({**OK, "orders": rows}), 200, content_type="application/json")

    def slow_place(request):
        state["placed"] += 1
        time.sleep(0.6)
        return Response(
            json.dumps({**OK, "orderId": "51234-1002", "strategyId": 1002}), 200, content_type="application/json"
        )

    ironbeam.expect_request("/order/51234/ANY").respond_with_handler(orders)
    ironbeam.expect_request("/order/51234/place").respond_with_handler(slow_place)
    adapter = live_adapter_for("ironbeam")
    with pytest.raises(VenueError) as caught:
        adapter.place_order(_order())
    assert caught.value.code == "INTEGRATION_TIMEOUT" and caught.value.uncertain
    ack = adapter.lookup_order(client_order_id="intent-7")
    assert (ack.venue_order_id, ack.status, ack.filled_quantity, ack.average_price) == (
        "51234-1002",
        VenueOrderStatus.FILLED,
        Decimal("2"),
        Decimal("6010.5"),
    )
    assert state["placed"] == 1
    assert adapter.lookup_order(client_order_id="never-sent") is None


@pytest.mark.django_db
def test_positions_fills_and_cancel(ironbeam):
    ironbeam.expect_request("/info/trader").respond_with_json(_trader())
    ironbeam.expect_request("/account/51234/positions").respond_with_json(
        {
            **OK,
            "accountId": "51234",
            "positions": [
                {
                    "accountId": "51234",
                    "currencyCode": "USD",
                    "exchSym": "XCME:MES.Z26",
                    "positionId": "p-1",
                    "quantity": 2,
                    "price": 6010.5,
                    "dateOpened": "20261120",
                    "side": "SHORT",
                    "unrealizedPL": -25.0,
                },
                {
                    "accountId": "51234",
                    "currencyCode": "USD",
                    "exchSym": "XCEC:GC.G27",
                    "positionId": "p-2",
                    "quantity": 1,
                    "price": 2400,
                    "dateOpened": "20261118",
                    "side": "LONG",
                    "unrealizedPL": 10.0,
                },
            ],
        }
    )
    ironbeam.expect_request("/order/51234/fills").respond_with_json(
        {
            **OK,
            "fills": [
                {
                    "orderId": "51234-1002",
                    "strategyId": 1002,
                    "accountId": "51234",
                    "exchSym": "XCME:MES.Z26",
                    "status": "FILLED",
                    "side": "SELL",
                    "quantity": 2,
                    "fillQuantity": 2,
                    "fillPrice": 6010.5,
                    "price": 6010.5,
                    "fillTotalQuantity": 2,
                    "avgFillPrice": 6010.5,
                    "fillDate": "2026-11-20T15:00:00Z",
                    "timeOrderEvent": 1795186800000,
                    "orderUpdateId": "10336761658263818775-134",
                },
                {
                    "orderId": "51234-800",
                    "strategyId": 800,
                    "accountId": "51234",
                    "exchSym": "XCME:MES.Z26",
                    "status": "FILLED",
                    "side": "BUY",
                    "quantity": 1,
                    "price": 1.0,
                    "fillQuantity": 1,
                    "fillTotalQuantity": 1,
                    "fillPrice": 1.0,
                    "avgFillPrice": 1.0,
                    "fillDate": "2026-11-01T15:00:00Z",
                    "timeOrderEvent": 1793545200000,
                    "orderUpdateId": "10336761658263818001-2",
                },
            ],
        }
    )
    ironbeam.expect_request("/order/51234/ANY").respond_with_json({**OK, "orders": [_row("51234-1003", 1003)]})
    ironbeam.expect_request("/order/51234/cancel/51234-1003", method="DELETE").respond_with_json(
        {**OK, "orders": [_row("51234-1003", 1003, status="CANCELLED")]}
    )
    adapter = live_adapter_for("ironbeam")
    assert adapter.positions() == {"MES": Decimal("-2"), "XCEC:GC.G27": Decimal("1")}  # unsupported roots stay
    from datetime import UTC, datetime

    [fill] = adapter.fills_since(datetime(2026, 11, 10, tzinfo=UTC))
    assert (fill.venue_fill_id, fill.quantity, fill.price, fill.fee) == (
        "10336761658263818775-134",
        Decimal("2"),
        Decimal("6010.5"),
        None,
    )
    ack = adapter.cancel_order(client_order_id="intent-8", venue_order_id="51234-1003")
    assert ack.status == VenueOrderStatus.CANCELLED
