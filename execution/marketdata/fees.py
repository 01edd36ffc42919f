"""Each venue's taker fee for pricing an arbitrage, and where it came from.

The ``ARB_TAKER_FEES`` setting (the tenant's actual tier, a fraction of notional per venue) wins; otherwise
ccxt's published schedule for the venue (its base tier, integrations.providers.ccxt_fees); otherwise the fee is
unknown and the scanner prices no pair that needs it (fail closed, never a zero fee)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from integrations.providers.ccxt_fees import published_taker_fee

SOURCE_SETTINGS = "settings:ARB_TAKER_FEES"
SOURCE_CCXT = "ccxt:published"


def taker_fee(venue: str) -> tuple[Decimal | None, str]:
    configured = settings.ARB_TAKER_FEES.get(venue)
    if configured is not None:
        return Decimal(str(configured)), SOURCE_SETTINGS
    published = published_taker_fee(venue)
    if published is not None:
        return published, SOURCE_CCXT
    return None, "unknown"


def fee_schedule(venues) -> tuple[dict[str, Decimal], dict[str, str]]:
    """(fee by venue, source by venue) for ``venues``; venues whose fee is unknown are left out of the fees."""
    fees, sources = {}, {}
    for venue in sorted(set(venues)):
        fee, source = taker_fee(venue)
        sources[venue] = source
        if fee is not None:
            fees[venue] = fee
    return fees, sources
