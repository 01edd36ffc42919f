"""Venues at the other end of the wire, for OMS tests: registered in the live venue registry like a real adapter,
they stand for the exchange (what it received, what it answers), never for any of our code."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from controlplane.errors import ErrorCode
from integrations.venues import registry
from integrations.venues.base import VenueError, VenueOrderAck, VenueOrderRequest, VenueOrderStatus


class ExchangeVenue:
    """Answers each order with ``answer(request)`` (an ack, or raises) and records, thread-safely, every order and
    cancel it received and the thread that sent it."""

    def __init__(self, name: str, answer: Callable[[VenueOrderRequest], VenueOrderAck] | None = None):
        self.name = name
        self.answer = answer or self.working
        self.received: list[str] = []
        self.sender_threads: list[int] = []
        self.cancelled: list[str] = []
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def working(self, request: VenueOrderRequest) -> VenueOrderAck:
        return VenueOrderAck(
            venue_order_id=f"{self.name}-{request.client_order_id}",
            client_order_id=request.client_order_id,
            status=VenueOrderStatus.WORKING,
        )

    def place_order(self, request: VenueOrderRequest) -> VenueOrderAck:
        with self._lock:
            self.received.append(request.client_order_id)
            self.sender_threads.append(threading.get_ident())
        return self.answer(request)

    def cancel_order(self, *, client_order_id: str, venue_order_id: str | None) -> VenueOrderAck:
        with self._lock:
            self.cancelled.append(client_order_id)
        return VenueOrderAck(
            venue_order_id=venue_order_id or "", client_order_id=client_order_id, status=VenueOrderStatus.CANCELLED
        )

    def lookup_order(self, *, client_order_id: str, venue_order_id: str | None = None) -> VenueOrderAck | None:
        with self._lock:
            self.lookups.append(client_order_id)
        return None  # it answers, and the order is not there

    def fills_since(self, since):
        return []


def rejecting(request: VenueOrderRequest) -> VenueOrderAck:
    return VenueOrderAck(
        venue_order_id="", client_order_id=request.client_order_id, status=VenueOrderStatus.REJECTED, reason="no"
    )


def timing_out(request: VenueOrderRequest) -> VenueOrderAck:
    raise VenueError(ErrorCode.INTEGRATION_TIMEOUT, "read timed out after sending", uncertain=True)


@contextlib.contextmanager
def exchange_venues(*venues: ExchangeVenue) -> Iterator[None]:
    for venue in venues:
        registry.register_venue(venue.name, lambda *, bot_id=None, venue=venue: venue)
    try:
        yield
    finally:
        for venue in venues:
            registry._factories.pop(venue.name, None)
