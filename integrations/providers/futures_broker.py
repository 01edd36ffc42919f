"""The base of the futures brokers' clients (demo and live hosts, bearer tokens): ``tradovate`` and ``ironbeam``."""

from __future__ import annotations

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient


class EnvironmentBroker(ProviderClient):
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
