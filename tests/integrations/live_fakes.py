"""A fake Tradovate in its documented shapes, for tests that run the OMS against a LIVE Tradovate bot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane import tenancy
from execution.models import Instrument
from integrations import services

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


def es_instrument() -> Instrument:
    return Instrument.objects.get_or_create(
        symbol="ES",
        defaults=dict(venue="CME", asset_class="future", tick_size="0.25", multiplier="50", calendar="CME_Equity"),
    )[0]


def live_tradovate_bot(*, tenant, owner, name: str = "live-es") -> Bot:
    """A LIVE bot on Tradovate with its keys set (not yet verified), at autonomy tier T3 (its full limits: the tier
    it would need to have gone LIVE with them)."""
    with tenancy.tenant_context(tenant.id):
        services.credentials_set(provider="tradovate", values=CREDS, actor=owner)
        bot = bot_services.bot_create(
            actor=owner,
            name=name,
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="tradovate",
            data_source="imported",
        )
        Bot.objects.filter(pk=bot.pk).update(stage=Stage.LIVE, autonomy_tier=Bot.AutonomyTier.T3)
        bot.refresh_from_db()
    return bot


def confirm_trade_only(*, tenant, owner, provider: str = "tradovate"):
    """As an owner, confirm that the verified key is trade-only. Tradovate cannot report a key's scopes, so a LIVE
    start (and a LIVE tick) waits for this after the verify of every new key (integrations.permissions)."""
    with tenancy.tenant_context(tenant.id):
        return services.key_permissions_confirm(provider=provider, actor=owner)


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
