"""Clients of the providers reached over plain HTTPS: AI and SMS. One class per provider (market data: market_data.py)."""

from __future__ import annotations

from integrations.clients.base import ErrorCode, IntegrationError, ProviderClient


class _ModelListClient(ProviderClient):
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


class OpenAIClient(_ModelListClient):
    provider = "openai"
    models_path = "/v1/models"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('OPENAI_API_KEY')}"}


class AnthropicClient(_ModelListClient):
    provider = "anthropic"
    models_path = "/v1/models"
    API_VERSION = "2023-06-01"

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.credential("ANTHROPIC_API_KEY"), "anthropic-version": self.API_VERSION}


class GeminiClient(_ModelListClient):
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


class GroqClient(_ModelListClient):
    provider = "groq"
    models_path = "/openai/v1/models"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('GROQ_API_KEY')}"}


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


class TwilioClient(ProviderClient):
    """Twilio's REST API (what the twilio SDK calls): fetch the account, HTTP basic auth with SID and token."""

    provider = "twilio"

    def verify(self) -> dict:
        return self.run("verify", self._fetch_account)

    def _fetch_account(self) -> dict:
        sid = self.credential("TWILIO_ACCOUNT_SID")
        response = self.request(
            "GET", f"/2010-04-01/Accounts/{sid}.json", safe=True, auth=(sid, self.credential("TWILIO_AUTH_TOKEN"))
        )
        body = self.json(response)
        if body.get("sid") != sid or "status" not in body:
            self.malformed("the account answered is not the one asked for")
        if body["status"] != "active":
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"The Twilio account is {body['status']}, not active.",
                provider=self.provider,
            )
        return {"account_status": body["status"]}
