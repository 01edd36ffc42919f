"""OpenAI: the key is proved by listing models."""

from __future__ import annotations

from integrations.providers.model_list import ModelListClient


class OpenAIClient(ModelListClient):
    provider = "openai"
    models_path = "/v1/models"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('OPENAI_API_KEY')}"}
