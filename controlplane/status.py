"""The core's side of system status: its levels, the database and Redis probes, the per-process cache and the
``freshness()`` fields every money answer carries.

Computing the status reads every app (integrations, bots, the scheduler, market data), so it lives on top
(oversight.status); the cache asks for it through the declared hook ``status.compute`` (controlplane.hooks). If
computing fails, the answer is UNKNOWN, never OK. Each probe has a timeout, so the answer comes back within a
bounded time with Redis, Celery or a provider down.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from controlplane import hooks, redis_clients, tenancy
from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS, ErrorCode
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)

BLOCKED, DEGRADED, OK = "BLOCKED", "DEGRADED", "OK"


def issue(code: ErrorCode | str, component: str, message: str, suggested_fix: str) -> dict:
    return {"code": str(code), "component": component, "message": message, "suggested_fix": suggested_fix}


def probe_database() -> dict | None:
    """None when the database answers ``SELECT 1``, else its issue. Bounded by ``DATABASE_CONNECT_TIMEOUT`` to
    connect and ``STATUS_PROBE_TIMEOUT_SECONDS`` to answer; in a transaction (a savepoint inside the request's)
    so that the statement timeout it sets ends with it."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.STATUS_PROBE_TIMEOUT_SECONDS * 1000)])
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DATABASE_UNAVAILABLE_ERRORS + (DatabaseError,) as exc:
        logger.warning("status: database probe failed", exc_info=exc)
        return issue(
            ErrorCode.SERVICE_UNAVAILABLE,
            "database",
            "The database is unreachable.",
            "Check DATABASE_URL and that Postgres is running.",
        )
    return None


def probe_redis(url: str | None = None) -> dict | None:
    """PING Redis itself (not the remembered failure), within the probe timeout."""
    if redis_clients.probe(url, timeout=settings.STATUS_PROBE_TIMEOUT_SECONDS):
        return None
    return issue(
        ErrorCode.SERVICE_UNAVAILABLE,
        "redis",
        "Redis is unreachable: no background work runs.",
        "Check REDIS_URL and that Redis is running.",
    )


UNKNOWN = "UNKNOWN"
_cache: dict[int, tuple[float, dict]] = {}


def cached_system_status() -> dict:
    """The current tenant's status, computed at most once every ``STATUS_CACHE_SECONDS`` per process.

    Pages and answers that only need to know whether to warn read this, so a page never pays for the probes on
    every render. If computing it fails, the answer is ``UNKNOWN`` with the failure's trace id: never OK.
    """
    tenant_id = tenancy.require_tenant_id()
    now = time.monotonic()
    hit = _cache.get(tenant_id)
    if hit is not None and now - hit[0] < settings.STATUS_CACHE_SECONDS:
        return hit[1]
    try:
        status = hooks.hook("status.compute")()
    except Exception:  # the status of the status: reported as unknown, never as OK
        logger.exception("status: computing the system status failed")
        return {
            "status": UNKNOWN,
            "autonomy_allowed": False,
            "checked_at": timezone.now(),
            "trace_id": current_trace_id(),
            "scheduler": None,
            "integrations": {},
            "bots": {},
            "blockers": [
                issue(
                    ErrorCode.INTERNAL_ERROR,
                    "status",
                    "The system status could not be computed.",
                    "See the log lines with this trace id.",
                )
                | {"severity": "blocking"}
            ],
        }
    _cache[tenant_id] = (now, status)
    return status


def freshness() -> dict:
    """The fields every API answer that reports money or counts carries (DESIGN.md invariant 11): when its numbers
    were measured (``as_of``), the ``system_status`` (not ``status``, which answers use for their own), and while
    that is not OK ``degraded: true`` with the status's trace id, so a client never takes a zero measured while a
    provider or the scheduler was down for a fact. Read from the cached status: an answer never pays for the
    probes."""
    status = cached_system_status()
    degraded = status["status"] != OK
    return {
        "as_of": timezone.now(),
        "system_status": status["status"],
        "degraded": degraded,
        "status_trace_id": status["trace_id"] if degraded else None,
    }


def forget_cached_status() -> None:
    """After a change that moves the status (a verify, a key set), the next read computes it again."""
    _cache.clear()
