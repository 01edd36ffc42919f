"""Crypto venues through ccxt, one client class per venue on one ccxt-backed base."""

from __future__ import annotations

from urllib.parse import urlsplit

import ccxt

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient

# Most specific first: ccxt's exception classes form a hierarchy.
_CCXT_ERRORS: list[tuple[type[Exception], ErrorCode]] = [
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

    def exchange(self) -> ccxt.Exchange:
        config = {option: self.credential(name) for option, name in self.config_fields.items()}
        config.update({"timeout": int(self.timeout * 1000), "enableRateLimit": False})
        exchange = getattr(ccxt, self.exchange_id)(config)
        if self.base_url:
            exchange.urls["api"] = _rebase(exchange.urls["api"], self.base_url)
        return exchange

    def ccxt_call(self, fn, *, safe: bool):
        def attempt():
            try:
                return fn()
            except ccxt.BaseError as exc:
                raise IntegrationError(code_for_ccxt_error(exc), f"{self.spec.label}: {type(exc).__name__}.",
                                       provider=self.provider) from exc

        return self.with_retries(attempt, safe=safe)

    def verify(self) -> dict:
        return self.run("verify", self._balance_summary)

    def fetch_balance(self) -> dict:
        return self.run("fetch_balance", lambda: self.ccxt_call(self.exchange().fetch_balance, safe=True))

    def _balance_summary(self) -> dict:
        balance = self.ccxt_call(self.exchange().fetch_balance, safe=True)
        if not isinstance(balance, dict) or not isinstance(balance.get("total"), dict):
            self.malformed("no balance totals")
        return {"currencies": len(balance["total"])}


class CoinbaseClient(CcxtVenueClient):
    provider = "coinbase"
    exchange_id = "coinbase"
    config_fields = {"apiKey": "COINBASE_API_KEY", "secret": "COINBASE_API_SECRET"}


class KrakenClient(CcxtVenueClient):
    provider = "kraken"
    exchange_id = "kraken"
    config_fields = {"apiKey": "KRAKEN_API_KEY", "secret": "KRAKEN_API_SECRET"}


class BinanceUSClient(CcxtVenueClient):
    provider = "binanceus"
    exchange_id = "binanceus"
    config_fields = {"apiKey": "BINANCEUS_API_KEY", "secret": "BINANCEUS_API_SECRET"}


class HyperliquidClient(CcxtVenueClient):
    provider = "hyperliquid"
    exchange_id = "hyperliquid"
    config_fields = {"walletAddress": "HYPERLIQUID_WALLET_ADDRESS", "privateKey": "HYPERLIQUID_PRIVATE_KEY"}
