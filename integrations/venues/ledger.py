"""What we were about to send, written before each send, so an answer lost to a timeout or a crash can be
resolved afterwards by looking the order up instead of sending it again.

Venues that take our client order id (Tradovate, the ccxt venues) are looked up by it; the record still keeps
the symbol (ccxt lookups need it). Ironbeam's order request has no client id field, so its record also keeps
the order's fingerprint and the ids of the orders that existed before the send: afterwards, exactly one new
order with that fingerprint is ours. Records live in Redis (shared by every worker) for ``RETENTION``; if
Redis cannot take the record, the order is not sent (fail closed).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import redis

from controlplane import redis_clients, tenancy
from controlplane.errors import ErrorCode
from integrations.venues.base import VenueError, VenueOrderRequest

RETENTION = timedelta(days=7)


class SendLedger:
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.prefix = f"cp:venues:sent:{tenancy.require_tenant_id()}:{venue}"
        self.redis = redis_clients.client()

    def record(self, request: VenueOrderRequest, **extra) -> None:
        """Before the send. Raises VenueError (nothing was sent) when Redis cannot keep the record."""
        data = {k: str(v) if v is not None else None for k, v in asdict(request).items() if k != "venue_market"}
        data.update(extra, sent_at=datetime.now(UTC).isoformat())
        try:
            pipe = self.redis.pipeline()
            pipe.set(f"{self.prefix}:order:{request.client_order_id}", json.dumps(data), ex=RETENTION)
            pipe.sadd(f"{self.prefix}:symbols", request.symbol)
            pipe.expire(f"{self.prefix}:symbols", RETENTION)
            pipe.execute()
        except redis.RedisError as exc:
            raise VenueError(
                ErrorCode.SERVICE_UNAVAILABLE, "The send ledger (Redis) is unavailable; the order was not sent."
            ) from exc

    def get(self, client_order_id: str) -> dict | None:
        raw = self._read(lambda: self.redis.get(f"{self.prefix}:order:{client_order_id}"))
        return json.loads(raw) if raw else None

    def bind(self, client_order_id: str, venue_order_id: str) -> None:
        """After the send: the venue's id for our order (for fills that carry only the venue's id)."""
        try:
            self.redis.set(f"{self.prefix}:venue-id:{venue_order_id}", client_order_id, ex=RETENTION)
        except redis.RedisError:
            pass  # only fills attribution uses it; lookups still work from the order record

    def client_order_id_for(self, venue_order_id: str) -> str:
        raw = self._read(lambda: self.redis.get(f"{self.prefix}:venue-id:{venue_order_id}"))
        return raw.decode() if raw else ""

    def symbols(self) -> list[str]:
        return sorted(s.decode() for s in self._read(lambda: self.redis.smembers(f"{self.prefix}:symbols")))

    @staticmethod
    def _read(fn):
        try:
            return fn()
        except redis.RedisError as exc:
            raise VenueError(
                ErrorCode.SERVICE_UNAVAILABLE, "The send ledger (Redis) is unavailable.", uncertain=True
            ) from exc
