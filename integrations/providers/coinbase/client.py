"""Coinbase Advanced Trade through ccxt: its key-permissions read."""

from __future__ import annotations

from integrations.permissions import reported_flags
from integrations.providers.ccxt_client import CcxtVenueClient


class CoinbaseClient(CcxtVenueClient):
    """Coinbase Advanced Trade. Key permissions: ``GET /api/v3/brokerage/key_permissions`` answers ``can_view``,
    ``can_trade``, ``can_transfer``, ``portfolio_uuid``, ``portfolio_type``
    (https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/data-api/get-api-key-permissions).
    The ``transfer`` scope is the one that sends and withdraws funds and moves them between portfolios
    (https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-scopes), so it counts as both."""

    provider = "coinbase"
    exchange_id = "coinbase"
    market_order_needs_price = True
    config_fields = {"apiKey": "COINBASE_API_KEY", "secret": "COINBASE_API_SECRET"}
    trade_only_key_fix = (
        "In the Coinbase Developer Platform (portal.cdp.coinbase.com, API keys), create a key "
        "with View and Trade only; leave Transfer off."
    )
    FIELDS = ("can_view", "can_trade", "can_transfer", "portfolio_uuid", "portfolio_type")
    # ccxt's Coinbase drops ``clientOrderId`` and sends its own ``ccxt-<uuid>``; only ``client_order_id`` reaches
    # the venue, and without ours a lost answer could never be found again.
    client_order_param = "client_order_id"

    def _verify(self) -> dict:
        body = self.exchange().v3PrivateGetBrokerageKeyPermissions()
        if not isinstance(body, dict) or not all(isinstance(body.get(k), bool) for k in ("can_trade", "can_transfer")):
            self.malformed("key_permissions without can_trade and can_transfer")
        return {
            "permissions": {
                "source": "GET /api/v3/brokerage/key_permissions",
                "can_trade": body["can_trade"],
                "can_withdraw": body["can_transfer"],
                "can_transfer": body["can_transfer"],
                "reported": reported_flags(body, self.FIELDS),
            }
        }
