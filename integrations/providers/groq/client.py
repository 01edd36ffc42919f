"""Groq: the key is proved by listing models."""

from __future__ import annotations

from integrations.providers.model_list import ModelListClient


class GroqClient(ModelListClient):
    provider = "groq"
    models_path = "/openai/v1/models"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('GROQ_API_KEY')}"}
