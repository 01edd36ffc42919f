"""The base of the four crypto venues' clients (``coinbase``, ``kraken``, ``binanceus``, ``hyperliquid``): one
ccxt exchange per client, ccxt's errors as our codes.

Orders go through ccxt's unified API (create_order, cancel_order, fetch_order, fetch_open_orders,
fetch_closed_orders, fetch_my_trades, fetch_balance, fetch_positions).

Verify proves the key with one signed read and reports what the key may do (``permissions``, judged by
integrations.permissions: a key that can withdraw or transfer fails verify). Each venue's source is cited on its
client (``integrations/providers/<venue>/client.py``): Coinbase and Binance.US answer a key-permissions call, Kraken
has none and is probed with a read that only a withdraw-capable key may make, Hyperliquid is decided by who signs
(an API wallet cannot withdraw by design). The verify calls are ccxt's implicit REST methods, so no market list is
loaded to check a key.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient

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

    # --- public market data (the quote collector, execution.marketdata.quotes) ------------------------------

    def order_books(self, symbols: list[str], *, depth: int) -> tuple[dict[str, dict], dict[str, ErrorCode]]:
        """The books of ``symbols`` (ccxt's unified form), ``depth`` levels, asked concurrently: one recorded
        operation (``quotes.books``) per poll, not one per market, so proof of use stays a few rows a second.
        Returns the books and, apart, the markets that failed with their code; when every market fails the
        operation fails (and counts against the breaker)."""

        def fetch_all():
            exchange = self.exchange()
            exchange.load_markets()

            def one(symbol: str):
                try:
                    return symbol, exchange.fetch_order_book(symbol, depth), None
                except ccxt.BaseError as exc:
                    return symbol, None, exc

            with ThreadPoolExecutor(max_workers=max(1, min(8, len(symbols)))) as pool:
                rows = list(pool.map(one, symbols))
            failed = {symbol: exc for symbol, _, exc in rows if exc is not None}
            if failed and len(failed) == len(rows):
                raise next(iter(failed.values()))
            books = {symbol: book for symbol, book, exc in rows if exc is None}
            return books, {symbol: code_for_ccxt_error(exc) for symbol, exc in failed.items()}

        return self.run("quotes.books", lambda: self.ccxt_call(fetch_all, safe=True))

    def funding_rates(self, symbols: list[str]) -> dict[str, dict]:
        """ccxt's funding rates (mark, index, rate, funding time) of perpetual ``symbols``; empty where the venue
        has none in ccxt (``has['fetchFundingRates']``), without a call."""
        exchange = self.exchange()
        if not symbols or not exchange.has.get("fetchFundingRates"):
            return {}
        return self.op("quotes.funding", "fetch_funding_rates", symbols, safe=True)

    def verify(self) -> dict:
        return self.run("verify", lambda: self.ccxt_call(self._verify, safe=True))

    def _verify(self) -> dict:
        """One signed read that proves the key, and ``permissions`` as the venue reports them."""
        raise NotImplementedError

    def fetch_balance(self) -> dict:
        return self.run("fetch_balance", lambda: self.ccxt_call(self.exchange().fetch_balance, safe=True))
