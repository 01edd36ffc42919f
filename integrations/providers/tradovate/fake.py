"""Tradovate's side in its documented shapes (see ``client.py`` for the pages), registered on a pytest-httpserver
instance passed in: a session, one account, an order found by its clOrdId with its fills and fees, positions.
Tests run the OMS against it; production never imports it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The credentials of the fake account (Tradovate's own field names; the fake accepts any).
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


def expires(minutes: float = 80) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def serve_session(server) -> None:
    server.expect_request("/auth/accesstokenrequest", method="POST").respond_with_json(
        {"accessToken": "tok-1", "mdAccessToken": "md", "expirationTime": expires(), "userId": 7}
    )
    server.expect_request("/account/list").respond_with_json([ACCOUNT])


def order_found(server, *, client_order_id: str, order_id: int, status: str = "Filled", fills=(), fees=()) -> None:
    """The venue's side of an order that arrived: its New command (with our clOrdId), the order, fills, fees."""
    server.expect_request("/command/list").respond_with_json(
        [
            {
                "id": 1,
                "orderId": order_id,
                "clOrdId": client_order_id,
                "commandType": "New",
                "commandStatus": "RiskPassed",
                "timestamp": datetime.now(UTC).isoformat(),
                "isAutomated": True,
            }
        ]
    )
    server.expect_request("/order/item", query_string=f"id={order_id}").respond_with_json(
        {
            "id": order_id,
            "accountId": 701,
            "contractId": 55,
            "timestamp": datetime.now(UTC).isoformat(),
            "action": "Buy",
            "ordStatus": status,
            "admin": False,
        }
    )
    server.expect_request("/fill/deps", query_string=f"masterid={order_id}").respond_with_json(list(fills))
    server.expect_request("/fill/list").respond_with_json(list(fills))
    server.expect_request("/fillFee/list").respond_with_json(list(fees))


def fill(fill_id: int, order_id: int, *, qty: int = 1, price: float = 6001.25) -> dict:
    return {
        "id": fill_id,
        "orderId": order_id,
        "contractId": 55,
        "timestamp": datetime.now(UTC).isoformat(),
        "tradeDate": {"year": 2026, "month": 11, "day": 20},
        "action": "Buy",
        "qty": qty,
        "price": price,
        "active": True,
        "finallyPaired": 0,
    }


def fill_fee(fill_id: int) -> dict:
    """Tradovate's FillFee for one fill (id = the fill's id), every documented field (fill-fee-list); a fee
    Tradovate does not charge comes back null."""
    return {
        "id": fill_id,
        "clearingFee": 0.19,
        "clearingCurrencyId": 1,
        "exchangeFee": 1.38,
        "exchangeCurrencyId": 1,
        "nfaFee": 0.02,
        "nfaCurrencyId": 1,
        "brokerageFee": 0.0,
        "brokerageCurrencyId": 1,
        "ipFee": None,
        "ipCurrencyId": None,
        "commission": 0.79,
        "commissionCurrencyId": 1,
        "orderRoutingFee": 0.1,
        "orderRoutingCurrencyId": 1,
    }


def position(
    position_id: int, *, account_id: int, contract_id: int, net_pos: int, net_price: float | None = 6000.0
) -> dict:
    """Tradovate's Position (position-list): every required field, the optional prices nullable."""
    bought, sold = max(net_pos, 0), max(-net_pos, 0)
    return {
        "id": position_id,
        "accountId": account_id,
        "contractId": contract_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "tradeDate": {"year": 2026, "month": 11, "day": 20},
        "netPos": net_pos,
        "netPrice": net_price,
        "bought": bought,
        "boughtValue": bought * (net_price or 0),
        "sold": sold,
        "soldValue": sold * (net_price or 0),
        "prevPos": 0,
        "prevPrice": None,
    }
