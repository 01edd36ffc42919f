"""What the market-data providers (``databento``, ``polygon``) share: the bar they return and how an HTTP error
status of their official clients becomes one of our codes.

A :class:`ProviderBar` is a bar exactly as the provider sent it (exact decimals, ``ts`` the bar's open in UTC).
Nothing is filled in: a bar the provider did not send does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError


@dataclass(frozen=True)
class ProviderBar:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    where: str  # "record 7" (DBN) or "result 7" (JSON), for problem reports


def utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("bar windows are timezone-aware (UTC)")
    return at.astimezone(UTC)


def status_error(label: str, provider: str, status: int, retry_after: str | None, detail: str = "") -> IntegrationError:
    """An HTTP error status from either provider's official client as our code: a refused key, a rate limit (with
    the provider's wait), a timeout, the provider failing, or a request it would not take."""
    if status in (401, 403):
        return IntegrationError(
            ErrorCode.INTEGRATION_AUTH_FAILED, f"{label} refused the credentials (HTTP {status}).", provider=provider
        )
    if status == 429:
        return IntegrationError(
            ErrorCode.INTEGRATION_RATE_LIMITED,
            f"{label} is rate limiting us (HTTP 429).",
            provider=provider,
            sent=True,
            retry_after=_seconds(retry_after),
        )
    if status in (408, 504):
        return IntegrationError(ErrorCode.INTEGRATION_TIMEOUT, f"{label} timed out (HTTP {status}).", provider=provider)
    if status >= 500:
        return IntegrationError(
            ErrorCode.INTEGRATION_UNREACHABLE, f"{label} failed (HTTP {status}).", provider=provider
        )
    return IntegrationError(
        ErrorCode.INTEGRATION_BAD_RESPONSE, f"{label} rejected the request (HTTP {status}){detail}.", provider=provider
    )


def _seconds(value) -> float | None:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return None
