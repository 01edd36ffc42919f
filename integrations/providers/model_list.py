"""The base of the AI providers whose cheapest authenticated read is listing models (``openai``, ``anthropic``,
``gemini``, ``groq``): a key that lists models is a key that works."""

from __future__ import annotations

from integrations.providers.base import ProviderClient


class ModelListClient(ProviderClient):
    """AI providers whose cheapest authenticated read is listing models."""

    models_path = ""
    list_key = "data"

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def verify(self) -> dict:
        return self.run("verify", self._list_models)

    def _list_models(self) -> dict:
        response = self.request("GET", self.models_path, safe=True, headers=self.auth_headers())
        body = self.json(response)
        models = body.get(self.list_key)
        if not isinstance(models, list):
            self.malformed(f"no {self.list_key!r} list")
        return {"models": len(models)}
