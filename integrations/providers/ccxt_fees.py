"""The ccxt venues' published trading fees: ccxt's static description of each exchange (its base tier), read
from the ccxt class without any network call. A scanner prices an arbitrage with the taker fee; the operator's
actual tier goes in ``ARB_TAKER_FEES`` and takes precedence (execution.arbitrage.fees)."""

from __future__ import annotations

from decimal import Decimal
from functools import cache

import ccxt


@cache
def published_taker_fee(venue: str) -> Decimal | None:
    """The taker fee ccxt publishes for ``venue`` as a fraction of notional, or None when it publishes none (or
    the venue is not a ccxt exchange)."""
    exchange_class = getattr(ccxt, venue, None)
    if exchange_class is None:
        return None
    fee = (exchange_class().fees or {}).get("trading", {}).get("taker")
    if fee is None or isinstance(fee, bool):
        return None
    return Decimal(str(fee))
