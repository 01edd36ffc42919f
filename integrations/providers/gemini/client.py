"""Google Gemini: the key is proved by listing models."""

from __future__ import annotations

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError
from integrations.providers.model_list import ModelListClient


class GeminiClient(ModelListClient):
    provider = "gemini"
    models_path = "/v1beta/models"
    list_key = "models"

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.credential("GEMINI_API_KEY")}

    def raise_for_status(self, response) -> None:
        # Google answers a bad key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID.
        if response.status_code == 400 and "API_KEY_INVALID" in response.text:
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                "Gemini refused the API key (API_KEY_INVALID).",
                provider=self.provider,
            )
        super().raise_for_status(response)
