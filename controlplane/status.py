"""GET /api/system/status: BLOCKED, DEGRADED or OK, never OK by default.

Reads every app: integrations directly (a lower layer), bots and the scheduler through controlplane.hooks.
Each probe has a timeout, so the answer comes back within a bounded time with Redis, Celery or a provider down.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from controlplane import hooks, redis_clients, tenancy
from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS, ErrorCode
from controlplane.models import ProcessHeartbeat
from controlplane.trace import current_trace_id

logger = logging.getLogger(__name__)

BLOCKED, DEGRADED, OK = "BLOCKED", "DEGRADED", "OK"


def _issue(code: ErrorCode | str, component: str, message: str, suggested_fix: str) -> dict:
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
        return _issue(
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
    return _issue(
        ErrorCode.SERVICE_UNAVAILABLE,
        "redis",
        "Redis is unreachable: no background work runs.",
        "Check REDIS_URL and that Redis is running.",
    )


def scheduler_state(tenant_id: int) -> tuple[dict, list[dict]]:
    stale_before = timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    beats = list(ProcessHeartbeat.objects.filter(kind=ProcessHeartbeat.Kind.BEAT).order_by("-last_seen_at")[:1])
    workers = list(ProcessHeartbeat.objects.filter(kind=ProcessHeartbeat.Kind.WORKER, last_seen_at__gte=stale_before))
    last_beat_at = beats[0].last_seen_at if beats else None
    beat_alive = bool(last_beat_at and last_beat_at >= stale_before)
    issues = []
    if not beat_alive:
        issues.append(
            _issue(
                ErrorCode.SERVICE_UNAVAILABLE,
                "celery.beat",
                "No fresh Celery beat heartbeat: scheduled work is not running.",
                "Start beat: celery -A controlplane beat -l INFO (a second one is safe: it stands by)",
            )
        )
    if not workers:
        issues.append(
            _issue(
                ErrorCode.SERVICE_UNAVAILABLE,
                "celery.worker",
                "No fresh Celery worker heartbeat: queued work is not running.",
                "Start a worker: celery -A controlplane worker -Q ticks,oms,backtests,verify,default",
            )
        )
    state = {
        "beat_alive": beat_alive,
        "last_beat_at": last_beat_at,
        "workers": [{"hostname": w.hostname, "queues": w.queues, "last_seen_at": w.last_seen_at} for w in workers],
        "last_tick_at": hooks.call("scheduler.last_tick_at", tenant_id, default=None),
    }
    return state, issues


def system_status(*, redis_url: str | None = None) -> dict:
    """The whole answer, for the current tenant."""
    from integrations.status import integration_blockers_and_problems

    tenant_id = tenancy.require_tenant_id()
    blockers: list[dict] = []
    degradations: list[dict] = []
    database_problem = probe_database()
    # Redis first: when it is hung, the breaker reads below then fail at once instead of each paying a timeout.
    redis_problem = probe_redis(redis_url)
    scheduler: dict = {"beat_alive": False, "last_beat_at": None, "workers": [], "last_tick_at": None}
    integrations: dict = {}
    if database_problem:
        blockers.append(database_problem)
    else:
        key_blockers, problems, integrations = integration_blockers_and_problems()
        blockers.extend(key_blockers)
        degradations.extend(problems)
        scheduler, scheduler_issues = scheduler_state(tenant_id)
        degradations.extend(scheduler_issues)
        degradations.extend(hooks.call("status.market_data_problems", tenant_id, default=[]) or [])
    if redis_problem:
        degradations.append(redis_problem)
    status = BLOCKED if blockers else DEGRADED if degradations else OK
    return {
        "status": status,
        "autonomy_allowed": status == OK,
        "blockers": [{**b, "severity": "blocking"} for b in blockers]
        + [{**d, "severity": "degrading"} for d in degradations],
        "bots": {"byAutonomyTier": hooks.call("bots.by_autonomy_tier", tenant_id, default={}) or {}},
        "scheduler": scheduler,
        "integrations": integrations,
        "checked_at": timezone.now(),
        "trace_id": current_trace_id(),
    }


def database_down_status(database_problem: dict) -> dict:
    """The platform's answer while the database is down, for anyone who asks (nobody can be authenticated then):
    BLOCKED with the database as its one blocker. Nothing else is claimed: what lives in the database (bots,
    keys, heartbeats) is unknown, so those fields are null rather than empty."""
    return {
        "status": BLOCKED,
        "autonomy_allowed": False,
        "blockers": [{**database_problem, "severity": "blocking"}],
        "bots": None,
        "scheduler": None,
        "integrations": None,
        "checked_at": timezone.now(),
        "trace_id": current_trace_id(),
    }


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
        status = system_status()
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
                _issue(
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
