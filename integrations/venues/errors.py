"""Provider errors as the OMS sees them: one VenueError, ``uncertain`` when an order may have arrived."""

from __future__ import annotations

from controlplane.errors import ErrorCode
from integrations.providers.base import IntegrationError
from integrations.venues.base import VenueError

# A send that failed this way may still have reached the venue: the OMS looks the order up, never re-sends.
MAYBE_ARRIVED = {ErrorCode.INTEGRATION_TIMEOUT, ErrorCode.INTEGRATION_UNREACHABLE, ErrorCode.INTEGRATION_BAD_RESPONSE}


def venue_error(exc: IntegrationError, *, sending: bool = False) -> VenueError:
    """``sending``: the failed call was one that creates or changes an order at the venue."""
    uncertain = sending and exc.code in MAYBE_ARRIVED and exc.sent is not False
    error = VenueError(exc.code, exc.message, uncertain=uncertain, retry_after=exc.retry_after)
    error.__cause__ = exc
    return error
