"""Twilio: the account SID and token are proved by fetching the account."""

from __future__ import annotations

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient


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
