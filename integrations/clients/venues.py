"""Crypto venues through ccxt, one client class per venue on one ccxt-backed base.

Orders go through ccxt's unified API (create_order, cancel_order, fetch_order, fetch_open_orders,
fetch_closed_orders, fetch_my_trades, fetch_balance, fetch_positions).

Verify proves the key with one signed read and reports what the key may do (``permissions``, judged by
integrations.permissions: a key that can withdraw or transfer fails verify). Each venue's source is cited on its
class: Coinbase and Binance.US answer a key-permissions call, Kraken has none and is probed with a read that only
a withdraw-capable key may make, Hyperliquid is decided by who signs (an API wallet cannot withdraw by design).
The verify calls are ccxt's implicit REST methods, so no market list is loaded to check a key.
"""

from __future__ import annotations

import logging
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient
from integrations.permissions import UNKNOWN

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
                message = (
                    f"{self.spec.label}: {str(exc)[:300]}"
                    if code == ErrorCode.ORDER_REJECTED
                    else f"{self.spec.label}: {type(exc).__name__}."
                )
                raise IntegrationError(
                    code, message, provider=self.provider, details={"provider": self.provider, "reason": message}
                ) from exc

        return self.with_retries(attempt, safe=safe)

    def op(self, operation: str, method: str, *args, safe: bool, **kwargs):
        """One ccxt call as one recorded operation."""
        return self.run(
            operation, lambda: self.ccxt_call(lambda: getattr(self.exchange(), method)(*args, **kwargs), safe=safe)
        )

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

    def create_order(
        self, *, symbol: str, order_type: str, side: str, amount, price=None, client_order_id: str, reference_price=None
    ):
        params = {self.client_order_param: self.client_order_id(client_order_id)}
        if order_type == "market":
            price = reference_price if self.market_order_needs_price else None
        return self.op(
            "order.place",
            "create_order",
            symbol,
            order_type,
            side,
            float(amount),
            float(price) if price is not None else None,
            params,
            safe=False,
        )

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

    def verify(self) -> dict:
        return self.run("verify", lambda: self.ccxt_call(self._verify, safe=True))

    def _verify(self) -> dict:
        """One signed read that proves the key, and ``permissions`` as the venue reports them."""
        raise NotImplementedError

    def fetch_balance(self) -> dict:
        return self.run("fetch_balance", lambda: self.ccxt_call(self.exchange().fetch_balance, safe=True))


def _flags(body: dict, names: tuple[str, ...]) -> dict:
    """The venue's own words, limited to the documented fields we read (nothing else is stored)."""
    return {name: body[name] for name in names if name in body}


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
                "reported": _flags(body, self.FIELDS),
            }
        }


class KrakenClient(CcxtVenueClient):
    """Kraken spot REST. Kraken has no call that lists a key's permissions, so verify reads the balance
    (``POST /0/private/Balance``, Query Funds) and then probes ``POST /0/private/WithdrawMethods``, which Kraken
    documents as needing "Funds permissions - Query and Funds permissions - Withdraw"
    (https://docs.kraken.com/api-reference/funding/get-withdrawal-methods). It only lists methods and cannot move
    funds, so the probe is safe: a key without Withdraw Funds is answered ``EGeneral:Permission denied``
    (https://docs.kraken.com/exchange/guides/rest/api-keys), a key with it gets the list. Withdraw Funds also
    covers ``WalletTransfer`` (spot to futures), so the one answer decides both. Trading rights are not probed
    (that would mean sending an order), so ``can_trade`` is None: not reported."""

    provider = "kraken"
    exchange_id = "kraken"
    config_fields = {"apiKey": "KRAKEN_API_KEY", "secret": "KRAKEN_API_SECRET"}
    trade_only_key_fix = (
        "In Kraken (Settings, API), create a key with Query Funds, Query Open/Closed Orders & "
        "Trades, Create & Modify Orders and Cancel/Close Orders; leave Withdraw Funds off."
    )

    def _verify(self) -> dict:
        exchange = self.exchange()
        balance = exchange.privatePostBalance()
        if not isinstance(balance, dict) or not isinstance(balance.get("result"), dict):
            self.malformed("Balance without a result")
        try:
            methods = exchange.privatePostWithdrawMethods()
        except ccxt.PermissionDenied as exc:
            if "EGeneral:Permission denied" not in str(exc):
                raise  # only Kraken's own refusal of the permission proves the key lacks it
            can_withdraw, answer = False, "EGeneral:Permission denied"
        else:
            if not isinstance(methods, dict) or "result" not in methods:
                self.malformed("WithdrawMethods without a result")
            can_withdraw, answer = True, "answered"
        return {
            "currencies": len(balance["result"]),
            "permissions": {
                "source": "POST /0/private/WithdrawMethods (read-only probe)",
                "can_trade": None,
                "can_withdraw": can_withdraw,
                "can_transfer": can_withdraw,
                "reported": {"WithdrawMethods": answer},
            },
        }


class BinanceUSClient(CcxtVenueClient):
    """Binance.US. Verify reads ``GET /api/v3/account`` (``canTrade``, ``canWithdraw``: the account's, not the
    key's; https://docs.binance.us/#get-user-account-information-user_data), then asks for the key's own
    permissions with ``GET /sapi/v1/account/apiRestrictions`` (``enableWithdrawals``, ``enableInternalTransfer``,
    ``permitsUniversalTransfer``, ``enableSpotAndMarginTrading``; Binance's documented call,
    https://developers.binance.com/docs/wallet/account/api-key-permission, which ccxt exposes on binanceus as
    ``sapiGetAccountApiRestrictions``). Binance.US documents no key-permission call of its own (ccxt's binanceus
    endpoint list, which follows docs.binance.us, has none), so when that call is refused the permissions are
    ``unknown`` and an owner confirms the key (the account's ``canWithdraw`` says nothing about the key)."""

    provider = "binanceus"
    exchange_id = "binanceus"
    config_fields = {"apiKey": "BINANCEUS_API_KEY", "secret": "BINANCEUS_API_SECRET"}
    trade_only_key_fix = (
        "In Binance.US (Profile, API Management), edit the key's restrictions: keep Enable "
        "Reading and Enable Spot Trading, leave Enable Withdrawals and transfers off."
    )
    FIELDS = (
        "enableReading",
        "enableSpotAndMarginTrading",
        "enableWithdrawals",
        "enableInternalTransfer",
        "permitsUniversalTransfer",
        "ipRestrict",
    )

    def _verify(self) -> dict:
        exchange = self.exchange()
        account = exchange.privateGetAccount()
        if not isinstance(account, dict) or not isinstance(account.get("canTrade"), bool):
            self.malformed("account without canTrade")
        try:
            restrictions = exchange.sapiGetAccountApiRestrictions()
        except (ccxt.RequestTimeout, ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            raise  # transient: verify again later rather than call the key unknown
        except ccxt.BaseError:
            restrictions = None  # refused or not served: the venue does not say
        if isinstance(restrictions, dict) and isinstance(restrictions.get("enableWithdrawals"), bool):
            transfer = bool(restrictions.get("enableInternalTransfer") or restrictions.get("permitsUniversalTransfer"))
            return {
                "permissions": {
                    "source": "GET /sapi/v1/account/apiRestrictions",
                    "can_trade": bool(restrictions.get("enableSpotAndMarginTrading")),
                    "can_withdraw": restrictions["enableWithdrawals"],
                    "can_transfer": transfer,
                    "reported": _flags(restrictions, self.FIELDS),
                }
            }
        if account["canTrade"] is False:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                "The Binance.US account cannot trade.",
                provider=self.provider,
                suggested_fix="Check the account's trading status at Binance.US, then verify.",
            )
        return {"permissions": UNKNOWN}


class _Hyperliquid(ccxt.hyperliquid):
    """ccxt's Hyperliquid, minus what it signs on its own: on the first private call ccxt approves a builder fee
    for ccxt's own address (``approveBuilderFee``, up to 0.01% of every order) and sets a referrer; neither is ours
    to give away from the owner's wallet. Orders then carry no builder."""

    def handle_builder_fee_approval(self) -> bool:
        return True


class HyperliquidClient(CcxtVenueClient):
    """Hyperliquid. Who signs decides what the key may do: the account's own private key can withdraw and
    transfer (``withdraw3``, ``usdSend``, ``usdClassTransfer`` are user-signed actions of the account,
    https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/exchange-endpoint), while an API (agent)
    wallet approved by the account only signs trading actions for it and holds nothing
    (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/nonces-and-api-wallets). Verify signs a
    ``noop`` (proves the key signs), derives the signer's address from the key, and asks ``POST /info``
    ``{"type": "userRole", "user": <signer>}``, which answers ``{"role": "agent", "data": {"user": <master>}}``
    for an API wallet (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint#query-a-users-role).
    The account's own key is too powerful; an agent of another account is refused."""

    provider = "hyperliquid"
    exchange_id = "hyperliquid"
    config_fields = {"walletAddress": "HYPERLIQUID_WALLET_ADDRESS", "privateKey": "HYPERLIQUID_PRIVATE_KEY"}
    sandbox_field = "HYPERLIQUID_ENVIRONMENT"
    sandbox_value = "testnet"
    market_order_needs_price = True
    # Perpetuals only (our Hyperliquid instruments are perps); no referrer, no builder fee (see _Hyperliquid).
    exchange_options = {
        "fetchMarkets": {"types": ["swap"]},
        "refSet": True,
        "builderFee": False,
        "approvedBuilderFee": False,
    }

    def exchange_class(self) -> type[ccxt.Exchange]:
        return _Hyperliquid

    def client_order_id(self, ours: str) -> str:
        return "0x" + uuid.uuid5(uuid.NAMESPACE_URL, f"controlplane:{ours}").hex

    trade_only_key_fix = (
        "At app.hyperliquid.xyz/API, generate an API wallet, authorize it for this account, and "
        "enter its private key as HYPERLIQUID_PRIVATE_KEY (HYPERLIQUID_WALLET_ADDRESS stays the "
        "account's address)."
    )

    def verify(self) -> dict:
        return self.run("verify", lambda: {**self._signed_noop(), "permissions": self._signer_permissions()})

    def _signer_permissions(self) -> dict:
        exchange = self.exchange()
        wallet = self.credential("HYPERLIQUID_WALLET_ADDRESS").lower()
        signer = exchange.eth_get_address_from_private_key(self.credential("HYPERLIQUID_PRIVATE_KEY")).lower()
        if signer == wallet:
            return {
                "source": "the signing key is the account's own key",
                "can_trade": True,
                "can_withdraw": True,
                "can_transfer": True,
                "reported": {"signer": signer},
            }
        answer = self.ccxt_call(lambda: exchange.publicPostInfo({"type": "userRole", "user": signer}), safe=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("role"), str):
            self.malformed("userRole without a role")
        master = (
            str((answer.get("data") or {}).get("user") or "").lower() if isinstance(answer.get("data"), dict) else ""
        )
        if answer["role"] != "agent" or master != wallet:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"HYPERLIQUID_PRIVATE_KEY signs as {signer}, which Hyperliquid knows as {answer['role']!r}"
                f"{f' of {master}' if master else ''}, not as an API wallet of {wallet}.",
                provider=self.provider,
            )
        return {
            "source": "POST /info userRole",
            "can_trade": True,
            "can_withdraw": False,
            "can_transfer": False,
            "reported": {"signer": signer, "role": "agent", "master": master},
        }

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
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"Hyperliquid refused the signed check: {str(reason)[:200]}",
                provider=self.provider,
            )
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
