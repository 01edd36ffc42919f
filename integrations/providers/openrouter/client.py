"""OpenRouter: the key is proved by its key-info endpoint."""

from __future__ import annotations

from integrations.providers.base import ProviderClient


class OpenRouterClient(ProviderClient):
    """OpenRouter's key-info endpoint: proves the key and shows its remaining limit."""

    provider = "openrouter"

    def verify(self) -> dict:
        return self.run("verify", self._key_info)

    def _key_info(self) -> dict:
        response = self.request(
            "GET",
            "/api/v1/key",
            safe=True,
            headers={"Authorization": f"Bearer {self.credential('OPENROUTER_API_KEY')}"},
        )
        data = self.json(response).get("data")
        if not isinstance(data, dict):
            self.malformed("no 'data' object")
        return {"limit_remaining": data.get("limit_remaining"), "is_free_tier": data.get("is_free_tier")}
