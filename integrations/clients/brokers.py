"""Futures brokers. Here: authentication and the read that verify needs; the order API extends these classes
(add methods that call ``self.run(<operation>, ...)`` and ``self.authorized_request(..., safe=False)``)."""

from __future__ import annotations

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient


class _EnvironmentBroker(ProviderClient):
    """A broker with demo and live hosts, chosen by its ``<PROVIDER>_ENVIRONMENT`` credential."""

    environment_field = ""

    def default_base_url(self) -> str:
        environment = self.credentials.get(self.environment_field, "")
        if environment not in self.spec.base_urls:
            raise IntegrationError(
                ErrorCode.INTEGRATION_KEY_MISSING,
                f"{self.environment_field} must be one of {sorted(self.spec.base_urls)}.",
                provider=self.provider,
                details={"provider": self.provider, "missing_env_vars": [self.environment_field]},
            )
        return self.spec.base_urls[environment]

    def __init__(self, **kwargs) -> None:
        self._token: str | None = None
        super().__init__(**kwargs)

    def authenticate(self) -> str:
        raise NotImplementedError

    def authorized_request(self, method: str, path: str, *, safe: bool, **kwargs):
        if self._token is None:
            self._token = self.authenticate()
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._token}"}
        return self.request(method, path, safe=safe, headers=headers, **kwargs)


class TradovateClient(_EnvironmentBroker):
    """Tradovate REST v1: ``POST /auth/accesstokenrequest`` then bearer-token calls."""

    provider = "tradovate"
    environment_field = "TRADOVATE_ENVIRONMENT"

    def authenticate(self) -> str:
        payload = {
            "name": self.credential("TRADOVATE_USERNAME"),
            "password": self.credential("TRADOVATE_PASSWORD"),
            "appId": self.credential("TRADOVATE_APP_ID"),
            "appVersion": self.credential("TRADOVATE_APP_VERSION"),
            "cid": self.credential("TRADOVATE_CID"),
            "sec": self.credential("TRADOVATE_SECRET"),
        }
        if self.credentials.get("TRADOVATE_DEVICE_ID"):
            payload["deviceId"] = self.credentials["TRADOVATE_DEVICE_ID"]
        # Requesting a token has no side effect beyond issuing a token, so it is safe to repeat.
        body = self.json(self.request("POST", "/auth/accesstokenrequest", safe=True, json=payload))
        if body.get("p-ticket"):
            # Tradovate's time penalty after too many attempts: wait p-time seconds, retry with the ticket.
            raise IntegrationError(ErrorCode.INTEGRATION_RATE_LIMITED,
                                   f"Tradovate imposed a {body.get('p-time', '?')}s login penalty.",
                                   provider=self.provider)
        if body.get("errorText"):
            raise IntegrationError(ErrorCode.INTEGRATION_AUTH_FAILED, "Tradovate refused the credentials.",
                                   provider=self.provider)
        token = body.get("accessToken")
        if not isinstance(token, str) or not token:
            self.malformed("no accessToken")
        return token

    def verify(self) -> dict:
        return self.run("verify", self._accounts_summary)

    def list_accounts(self) -> list[dict]:
        return self.run("account.list", self._accounts)

    def _accounts(self) -> list[dict]:
        accounts = self.json(self.authorized_request("GET", "/account/list", safe=True), expect=list)
        if not all(isinstance(a, dict) and "id" in a for a in accounts):
            self.malformed("accounts without ids")
        return accounts

    def _accounts_summary(self) -> dict:
        return {"accounts": len(self._accounts())}


class IronbeamClient(_EnvironmentBroker):
    """Ironbeam REST v2: ``POST /auth`` (username and API key) then bearer-token calls."""

    provider = "ironbeam"
    environment_field = "IRONBEAM_ENVIRONMENT"

    def authenticate(self) -> str:
        payload = {"username": self.credential("IRONBEAM_USERNAME"), "apiKey": self.credential("IRONBEAM_API_KEY")}
        if self.credentials.get("IRONBEAM_PASSWORD"):
            payload["password"] = self.credentials["IRONBEAM_PASSWORD"]
        body = self.json(self.request("POST", "/auth", safe=True, json=payload))
        if body.get("status") not in (None, "OK"):
            raise IntegrationError(ErrorCode.INTEGRATION_AUTH_FAILED, "Ironbeam refused the credentials.",
                                   provider=self.provider)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            self.malformed("no token")
        return token

    def verify(self) -> dict:
        return self.run("verify", self._trader_summary)

    def trader_info(self) -> dict:
        return self.run("info.trader", self._trader_info)

    def _trader_info(self) -> dict:
        body = self.json(self.authorized_request("GET", "/info/trader", safe=True))
        if not isinstance(body.get("accounts"), list):
            self.malformed("no accounts list")
        return body

    def _trader_summary(self) -> dict:
        info = self._trader_info()
        return {"accounts": len(info["accounts"]), "is_live": info.get("isLive")}
