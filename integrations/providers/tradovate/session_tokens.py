"""Tradovate's session tokens, shared by every worker, kept in Redis and encrypted at rest.

Tradovate allows two sessions per user and a third login closes the oldest, so workers must not each log in:
one token per credential lives in Redis (Fernet-encrypted like the keys themselves), and a Redis lock makes
sure only one process logs in or renews at a time while the others wait and then read its token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from controlplane import redis_clients
from integrations import crypto


@dataclass(frozen=True)
class SessionToken:
    value: str
    expires_at: datetime

    def seconds_left(self, now: datetime | None = None) -> float:
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


class TokenStoreUnavailable(RuntimeError):
    """Redis cannot hold or hand out the shared token; callers fail closed rather than log in per process."""


class SharedTokenStore:
    """The session token of one credential (tenant, provider and login identity)."""

    def __init__(self, *, provider: str, tenant_id: int, identity: str) -> None:
        digest = hashlib.sha256(f"{tenant_id}:{provider}:{identity}".encode()).hexdigest()[:32]
        self.key = f"cp:integrations:token:{provider}:{digest}"
        self.redis = redis_clients.client()

    def get(self) -> SessionToken | None:
        try:
            raw = self.redis.get(self.key)
        except redis.RedisError as exc:
            raise TokenStoreUnavailable(str(exc)) from exc
        if raw is None:
            return None
        try:
            data = json.loads(crypto.decrypt(raw.decode()))
            return SessionToken(data["value"], datetime.fromisoformat(data["expires_at"]))
        except (ValueError, KeyError, crypto.CredentialDecryptionError):
            return None  # unreadable (rotated key, old format): treated as absent, a new login replaces it

    def put(self, token: SessionToken) -> None:
        ttl = int(token.seconds_left())
        if ttl <= 0:
            return
        payload = crypto.encrypt(json.dumps({"value": token.value, "expires_at": token.expires_at.isoformat()}))
        try:
            self.redis.set(self.key, payload, ex=ttl)
        except redis.RedisError as exc:
            raise TokenStoreUnavailable(str(exc)) from exc

    def discard(self, value: str) -> None:
        """Drop the stored token if it is still ``value`` (another worker may have replaced it already)."""
        current = self.get()
        if current is not None and current.value == value:
            try:
                self.redis.delete(self.key)
            except redis.RedisError as exc:
                raise TokenStoreUnavailable(str(exc)) from exc

    def lock(self, *, timeout: float):
        """Held while logging in or renewing; others block on it, then read the fresh token."""
        return self.redis.lock(f"{self.key}:lock", timeout=timeout, blocking_timeout=timeout)
