"""Anthropic: the key is proved by listing models."""

from __future__ import annotations

from integrations.providers.model_list import ModelListClient


class AnthropicClient(ModelListClient):
    provider = "anthropic"
    models_path = "/v1/models"
    API_VERSION = "2023-06-01"

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.credential("ANTHROPIC_API_KEY"), "anthropic-version": self.API_VERSION}
