"""Twilio through its official client (``twilio.rest.Client``): the account fetch that proves the keys and the SMS
send that alerts and login codes leave by.

The SDK's API domain is pointed at the provider's configured base URL (``INTEGRATION_BASE_URLS`` or the
registry's default), so tests speak to a local server through the same code production runs. The SDK raises its
own exceptions and lets ``requests``' through; :meth:`TwilioClient._official` maps both onto our codes, keeping
Twilio's numeric error code (21211 and the like) in the details where an operator can look it up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError, ProviderClient
from integrations.providers.market_data import status_error

T = TypeVar("T")

# Twilio's error codes that mean the credentials, not the request, are wrong (documented in its error dictionary).
_AUTH_ERROR_CODES = {20003, 20005, 20006}


class TwilioClient(ProviderClient):
    """Twilio's REST API through the official SDK; HTTP basic auth with the account SID and the auth token."""

    provider = "twilio"

    def verify(self) -> dict:
        return self.run("verify", lambda: self.with_retries(self._fetch_account, safe=True))

    def send_sms(self, *, to: str, body: str) -> dict:
        """Send one SMS from the tenant's ``TWILIO_FROM_NUMBER``; the message's sid and Twilio's status.

        Never repeated here: a send that failed after the request left may have been delivered, and the caller
        (the alert delivery task) decides whether to try again and records each attempt."""
        return self.run("messages.create", lambda: self._create_message(to=to, body=body))

    # --- the SDK ------------------------------------------------------------------------------------------

    def _sdk(self):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        sid = self.credential("TWILIO_ACCOUNT_SID")
        client = Client(sid, self.credential("TWILIO_AUTH_TOKEN"), http_client=TwilioHttpClient(timeout=self.timeout))
        # The SDK reads TWILIO_EDGE / TWILIO_REGION from the process environment and rewrites every host name with
        # them; the host is ours to choose (the configured base URL), so neither may apply.
        client.edge = None
        client.region = None
        client.api.base_url = self.base_url
        return client

    def _fetch_account(self) -> dict:
        sid = self.credential("TWILIO_ACCOUNT_SID")
        account = self._official(lambda: self._sdk().api.v2010.accounts(sid).fetch())
        if account.sid != sid or not account.status:
            self.malformed("the account answered is not the one asked for")
        if account.status != "active":
            raise IntegrationError(
                ErrorCode.INTEGRATION_AUTH_FAILED,
                f"The Twilio account is {account.status}, not active.",
                provider=self.provider,
            )
        return {"account_status": account.status}

    def _create_message(self, *, to: str, body: str) -> dict:
        client = self._sdk()  # the account's keys are named missing before the sending number
        from_number = self.credential("TWILIO_FROM_NUMBER")
        message = self._official(lambda: client.messages.create(to=to, from_=from_number, body=body))
        if not (isinstance(message.sid, str) and message.sid.startswith(("SM", "MM"))):
            self.malformed("the created message has no message sid")
        return {"sid": message.sid, "status": message.status}

    def _official(self, call: Callable[[], T]) -> T:
        """The SDK's failures as our codes: Twilio's error body (``code``, ``message``) kept in the details."""
        from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException

        label = self.spec.label
        try:
            return call()
        except TwilioRestException as exc:
            raise self._status_error(exc.status, exc.code, exc.msg) from exc
        except TwilioServiceException as exc:
            raise self._status_error(exc.status, exc.code, exc.detail or exc.title) from exc
        except requests.RequestException as exc:
            raise self.transport_error(exc, timeout=self.timeout) from exc
        except (TwilioException, ValueError) as exc:  # an answer the SDK could not read (not JSON)
            raise IntegrationError(
                ErrorCode.INTEGRATION_BAD_RESPONSE,
                f"{label} answered with a body it could not read ({type(exc).__name__}).",
                provider=self.provider,
            ) from exc

    def _status_error(self, status: int, twilio_code: int | None, twilio_message: str | None) -> IntegrationError:
        if twilio_code == status:  # the SDK's stand-in when the body carried no Twilio code
            twilio_code = None
        detail = f" (Twilio error {twilio_code}: {twilio_message})" if twilio_code else ""
        if twilio_code in _AUTH_ERROR_CODES:
            status = 401
        error = status_error(self.spec.label, self.provider, status, None, detail)
        error.details = {**(error.details or {}), "twilio_code": twilio_code, "http_status": status}
        return error
