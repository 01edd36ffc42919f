"""The one interface every venue adapter speaks to the OMS.

Only the OMS calls adapters, and only the OMS writes orders and fills from what they return. An adapter never
retries a ``place_order`` on its own: on a timeout the OMS looks the order up (``lookup_order`` by client order
id) before deciding anything, which is what makes sends at-most-once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from controlplane.errors import ErrorCode


class VenueOrderStatus(enum.StrEnum):
    WORKING = "WORKING"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class VenueOrderRequest:
    client_order_id: str  # our order's id as the venue sees it; carries the intent for lookups after a crash
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    order_type: str = "market"  # "market" | "limit" | "stop"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    bot_id: int | None = None  # for proof-of-use attribution
    # The price risk checked a market order at: venues that size a market order in the quote currency
    # (Coinbase's market buy) or cap its slippage from a price (Hyperliquid) are sent it; others ignore it.
    reference_price: Decimal | None = None
    # This venue's entry of the instrument's ``venue_symbols`` (ccxt venues send to that market and refuse an
    # order without one); None where the venue names markets by our symbol (futures roots, the sim venue).
    venue_market: dict | None = None
    # Our instrument's row, as the OMS read it with the order (None from callers that did not read it): the sim
    # venue, our own code on our own database, takes it as known instead of looking its symbol up again.
    instrument_id: int | None = None


@dataclass(frozen=True, slots=True)
class VenueOrderAck:
    venue_order_id: str
    client_order_id: str
    status: VenueOrderStatus
    filled_quantity: Decimal = Decimal("0")
    average_price: Decimal | None = None
    reason: str = ""  # the venue's words on a rejection
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VenueFill:
    venue_fill_id: str
    venue_order_id: str
    client_order_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal | None  # None: the venue did not report the fee (recorded as unknown, never as zero)
    ts: datetime


class VenueError(Exception):
    """A venue call failed. ``code`` is one of our ErrorCodes; ``uncertain`` means the order may have reached the
    venue (a timeout after sending), so the OMS must look it up rather than re-send or assume it failed."""

    def __init__(self, code: ErrorCode, message: str, *, uncertain: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.uncertain = uncertain
        self.retry_after = retry_after


class VenueAdapter(Protocol):
    name: str

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck: ...

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck: ...

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None: ...

    def fills_since(self, since: datetime) -> list[VenueFill]: ...

    def positions(self) -> dict[str, Decimal]: ...
