"""Crypto venues through ccxt, one client class per venue on one ccxt-backed base.

Orders go through ccxt's unified API (create_order, cancel_order, fetch_order, fetch_open_orders,
fetch_closed_orders, fetch_my_trades, fetch_balance, fetch_positions). Key permissions, where the venue reports
them: Coinbase Advanced Trade ``GET /api/v3/brokerage/key_permissions`` (``can_trade``, ``can_transfer``;
https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getapikeypermissions), Binance.US
``GET /api/v3/account`` (``canTrade``, ``canWithdraw``; https://docs.binance.us/#get-user-account-information-
user_data); Kraken reports none. Hyperliquid's balance is public by wallet, so verify signs a ``noop`` action
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/exchange-endpoint#invalidate-pending-nonce-noop),
which only consumes a nonce and fails unless the key is the wallet's or an approved agent's.
"""

from __future__ import annotations

import logging
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient

logger = logging.getLogger(__name__)

# Most specific first: ccxt's exception classes form a hierarchy.
_CCXT_ERRORS: list[tuple[type[Exception], ErrorCode]] = [
    (ccxt.InvalidOrder, ErrorCode.ORDER_REJECTED),
    (ccxt.InsufficientFunds, ErrorCode.ORDER_REJECTED),
    (ccxt.BadSymbol, ErrorCode.ORDER_REJECTED),
    (ccxt.RateLimitExceeded, ErrorCode.INTEGRATION_RATE_LIMITED),
    (ccxt.DDoSProtection, ErrorCode.INTEGRATION_RATE_LIMITED),
    (ccxt.RequestTimeout, ErrorCode.INTEGRATION_TIMEOUT),
    (ccxt.AuthenticationError, ErrorCode.INTEGRATION_AUTH_FAILED),
    (ccxt.PermissionDenied, ErrorCode.INTEGRATION_AUTH_FAILED),
    (ccxt.BadResponse, ErrorCode.INTEGRATION_BAD_RESPONSE),
    (ccxt.NetworkError, ErrorCode.INTEGRATION_UNREACHABLE),
    (ccxt.BaseError, ErrorCode.INTEGRATION_BAD_RESPONSE),
]


def code_for_ccxt_error(exc: Exception) -> ErrorCode:
    return next((code for cls, code in _CCXT_ERRORS if isinstance(exc, cls)), ErrorCode.INTEGRATION_BAD_RESPONSE)


def _rebase(urls, base_url: str):
    """ccxt's ``urls['api']`` with every host replaced by ``base_url`` (a proxy or a test server)."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base_url) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        parts = urlsplit(urls)
        return base_url + parts.path + (f"?{parts.query}" if parts.query else "")
    return urls


class CcxtVenueClient(ProviderClient):
    exchange_id = ""
    config_fields: dict[str, str] = {}  # ccxt option -> credential name

    def default_base_url(self) -> str:
        return ""

    # The credential that selects a sandbox/testnet, and its value for it (venues without one have none).
    sandbox_field = ""
    sandbox_value = ""

    # ccxt options of this venue's exchange (what it loads, what it must never do on its own).
    exchange_options: dict = {}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._exchange: ccxt.Exchange | None = None

    def exchange_class(self) -> type[ccxt.Exchange]:
        return getattr(ccxt, self.exchange_id)

    def exchange(self) -> ccxt.Exchange:
        """One ccxt instance per client (markets load once)."""
        if self._exchange is not None:
            return self._exchange
        config = {option: self.credential(name) for option, name in self.config_fields.items()}
        config.update({"timeout": int(self.timeout * 1000), "enableRateLimit": False})
        if self.exchange_options:
            config["options"] = dict(self.exchange_options)
        exchange = self.exchange_class()(config)
        if self.sandbox_field and self.credentials.get(self.sandbox_field) == self.sandbox_value:
            exchange.set_sandbox_mode(True)
        if self.base_url:
            exchange.urls["api"] = _rebase(exchange.urls["api"], self.base_url)
        self._exchange = exchange
        return exchange

    def ccxt_call(self, fn, *, safe: bool):
        def attempt():
            try:
                return fn()
            except ccxt.BaseError as exc:
                code = code_for_ccxt_error(exc)
                # ccxt's messages quote the venue's answer; keep it for rejections (it says why), else the class.
                message = f"{self.spec.label}: {str(exc)[:300]}" if code == ErrorCode.ORDER_REJECTED else \
                    f"{self.spec.label}: {type(exc).__name__}."
                raise IntegrationError(code, message, provider=self.provider,
                                       details={"provider": self.provider, "reason": message}) from exc

        return self.with_retries(attempt, safe=safe)

    def op(self, operation: str, method: str, *args, safe: bool, **kwargs):
        """One ccxt call as one recorded operation."""
        return self.run(operation, lambda: self.ccxt_call(
            lambda: getattr(self.exchange(), method)(*args, **kwargs), safe=safe))

    # --- orders and account -------------------------------------------------------------------------------

    def client_order_id(self, ours: str) -> str:
        """Our id in the venue's accepted form: a UUID derived from it (Coinbase, Kraken, Binance.US accept
        36 characters; Hyperliquid wants 128-bit hex), so the same order always carries the same id."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"controlplane:{ours}"))

    # ccxt wants a price with a market order here: Coinbase sizes a market buy in the quote currency (amount x
    # price), Hyperliquid caps a market order's slippage from it. Elsewhere a market order is sent without one.
    market_order_needs_price = False
    # The create_order param ccxt sends as the venue's client order id.
    client_order_param = "clientOrderId"

    def markets(self) -> dict:
        """The venue's own market list, read fresh through ccxt (``load_markets(reload=True)``): the only source
        of an instrument's venue symbol, base and quote."""
        return self.op("markets.load", "load_markets", True, safe=True)

    def create_order(self, *, symbol: str, order_type: str, side: str, amount, price=None, client_order_id: str,
                     reference_price=None):
        params = {self.client_order_param: self.client_order_id(client_order_id)}
        if order_type == "market":
            price = reference_price if self.market_order_needs_price else None
        return self.op("order.place", "create_order", symbol, order_type, side, float(amount),
                       float(price) if price is not None else None, params, safe=False)

    def cancel_order(self, *, venue_order_id: str, symbol: str):
        return self.op("order.cancel", "cancel_order", venue_order_id, symbol, safe=False)

    def fetch_order(self, *, venue_order_id: str, symbol: str):
        return self.op("order.fetch", "fetch_order", venue_order_id, symbol, safe=True)

    def find_order(self, *, client_order_id: str, symbol: str) -> dict | None:
        """Our order among the symbol's open and recent closed orders, by the client id it carried."""
        wanted = self.client_order_id(client_order_id)

        def find():
            exchange = self.exchange()
            rows = list(exchange.fetch_open_orders(symbol))
            if exchange.has.get("fetchClosedOrders"):
                rows += list(exchange.fetch_closed_orders(symbol))
            return next((o for o in rows if str(o.get("clientOrderId") or "").lower() == wanted.lower()), None)

        return self.run("order.find", lambda: self.ccxt_call(find, safe=True))

    def my_trades(self, *, symbol: str, since_ms: int) -> list[dict]:
        return self.op("trades.fetch", "fetch_my_trades", symbol, since_ms, safe=True)

    def holdings(self) -> dict[str, Decimal]:
        """Spot holdings per currency (non-zero totals)."""
        balance = self.fetch_balance()
        totals = balance.get("total") if isinstance(balance, dict) else None
        if not isinstance(totals, dict):
            self.malformed("no balance totals")
        return {c: Decimal(str(v)) for c, v in totals.items() if v}

    def key_permissions(self) -> dict | None:
        """``{"can_trade", "can_withdraw"}`` where the venue reports them, else None."""
        return None

    def verify(self) -> dict:
        return self.run("verify", self._balance_summary)

    def fetch_balance(self) -> dict:
        return self.run("fetch_balance", lambda: self.ccxt_call(self.exchange().fetch_balance, safe=True))

    def _balance_summary(self) -> dict:
        balance = self.ccxt_call(self.exchange().fetch_balance, safe=True)
        if not isinstance(balance, dict) or not isinstance(balance.get("total"), dict):
            self.malformed("no balance totals")
        summary = {"currencies": len(balance["total"])}
        permissions = self._permissions(balance)
        if permissions is not None:
            if not permissions.get("can_trade"):
                raise IntegrationError(ErrorCode.INTEGRATION_AUTH_FAILED,
                                       f"The {self.spec.label} key cannot trade.", provider=self.provider,
                                       suggested_fix="Create a key with trading permission and enter it in admin.")
            summary["can_trade"] = True
            summary["can_withdraw"] = bool(permissions.get("can_withdraw"))
            if summary["can_withdraw"]:
                summary["warning"] = "This trading key can also withdraw funds; use a key without withdrawal."
                logger.warning("integration key can withdraw", extra={"provider": self.provider})
        return summary

    def _permissions(self, balance: dict) -> dict | None:
        return None


class CoinbaseClient(CcxtVenueClient):
    provider = "coinbase"
    exchange_id = "coinbase"
    market_order_needs_price = True
    config_fields = {"apiKey": "COINBASE_API_KEY", "secret": "COINBASE_API_SECRET"}
    # ccxt's Coinbase drops ``clientOrderId`` and sends its own ``ccxt-<uuid>``; only ``client_order_id`` reaches
    # the venue, and without ours a lost answer could never be found again.
    client_order_param = "client_order_id"

    def _permissions(self, balance: dict) -> dict | None:
        body = self.ccxt_call(self.exchange().v3PrivateGetBrokerageKeyPermissions, safe=True)
        if not isinstance(body, dict) or "can_trade" not in body:
            self.malformed("key_permissions without can_trade")
        return {"can_trade": bool(body["can_trade"]), "can_withdraw": bool(body.get("can_transfer"))}


class KrakenClient(CcxtVenueClient):
    provider = "kraken"
    exchange_id = "kraken"
    config_fields = {"apiKey": "KRAKEN_API_KEY", "secret": "KRAKEN_API_SECRET"}


class BinanceUSClient(CcxtVenueClient):
    provider = "binanceus"
    exchange_id = "binanceus"
    config_fields = {"apiKey": "BINANCEUS_API_KEY", "secret": "BINANCEUS_API_SECRET"}

    def _permissions(self, balance: dict) -> dict | None:
        info = balance.get("info") if isinstance(balance, dict) else None
        if not isinstance(info, dict) or "canTrade" not in info:
            return None
        return {"can_trade": bool(info["canTrade"]), "can_withdraw": bool(info.get("canWithdraw"))}


class _Hyperliquid(ccxt.hyperliquid):
    """ccxt's Hyperliquid, minus what it signs on its own: on the first private call ccxt approves a builder fee
    for ccxt's own address (``approveBuilderFee``, up to 0.01% of every order) and sets a referrer; neither is ours
    to give away from the owner's wallet. Orders then carry no builder."""

    def handle_builder_fee_approval(self) -> bool:
        return True


class HyperliquidClient(CcxtVenueClient):
    provider = "hyperliquid"
    exchange_id = "hyperliquid"
    config_fields = {"walletAddress": "HYPERLIQUID_WALLET_ADDRESS", "privateKey": "HYPERLIQUID_PRIVATE_KEY"}
    sandbox_field = "HYPERLIQUID_ENVIRONMENT"
    sandbox_value = "testnet"
    market_order_needs_price = True
    # Perpetuals only (our Hyperliquid instruments are perps); no referrer, no builder fee (see _Hyperliquid).
    exchange_options = {"fetchMarkets": {"types": ["swap"]}, "refSet": True, "builderFee": False,
                        "approvedBuilderFee": False}

    def exchange_class(self) -> type[ccxt.Exchange]:
        return _Hyperliquid

    def client_order_id(self, ours: str) -> str:
        return "0x" + uuid.uuid5(uuid.NAMESPACE_URL, f"controlplane:{ours}").hex

    def verify(self) -> dict:
        return self.run("verify", self._signed_noop)

    def _signed_noop(self) -> dict:
        """Sign a ``noop`` (it only uses up a nonce): Hyperliquid refuses it unless the private key is the
        wallet's or an agent approved for it, which a public balance read could never show."""
        exchange = self.exchange()
        action = {"type": "noop"}
        nonce = int(time.time() * 1000)

        def post():
            signature = exchange.sign_l1_action(action, nonce)
            try:
                return exchange.privatePostExchange({"action": action, "nonce": nonce, "signature": signature})
            except ccxt.ExchangeError as exc:  # ccxt raises on {"status": "err"}: the key was refused
                if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.BadResponse)):
                    raise
                return {"status": "err", "response": str(exc)}

        body = self.ccxt_call(post, safe=False)
        if not isinstance(body, dict) or body.get("status") != "ok":
            reason = body.get("response") if isinstance(body, dict) else body
            raise IntegrationError(ErrorCode.INTEGRATION_AUTH_FAILED,
                                   f"Hyperliquid refused the signed check: {str(reason)[:200]}",
                                   provider=self.provider)
        return {"signed_action": "noop", "wallet": self.credentials["HYPERLIQUID_WALLET_ADDRESS"]}

    def holdings(self) -> dict[str, Decimal]:
        """Perpetual positions (signed contracts) per symbol."""
        rows = self.op("positions.fetch", "fetch_positions", safe=True)
        result = {}
        for row in rows:
            contracts = Decimal(str(row.get("contracts") or 0))
            if contracts:
                result[row["symbol"]] = -contracts if row.get("side") == "short" else contracts
        return result
