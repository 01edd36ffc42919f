"""GET /api/system/status: BLOCKED, DEGRADED or OK for the current tenant, never OK by default.

Reads every layer directly: integrations (keys, verifications, breakers), the scheduler's heartbeats, the tick's
market data, the bots' autonomy tiers. The core's cache (controlplane.status) asks for it through the declared
hook ``status.compute``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from controlplane import tenancy
from controlplane.errors import ErrorCode
from controlplane.models import ProcessHeartbeat
from controlplane.status import BLOCKED, DEGRADED, OK, issue, probe_database, probe_redis
from controlplane.trace import current_trace_id
from execution.marketdata.quotes import quote_collector_heartbeat
from execution.marketdata.selectors import market_data_problems
from execution.tick.selectors import last_tick_at
from integrations.status import integration_blockers_and_problems
from oversight.autonomy import tier_counts
from oversight.supervisor.heartbeat import supervisor_heartbeat


def scheduler_state(tenant_id: int) -> tuple[dict, list[dict]]:
    stale_before = timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    beats = list(ProcessHeartbeat.objects.filter(kind=ProcessHeartbeat.Kind.BEAT).order_by("-last_seen_at")[:1])
    workers = list(ProcessHeartbeat.objects.filter(kind=ProcessHeartbeat.Kind.WORKER, last_seen_at__gte=stale_before))
    last_beat_at = beats[0].last_seen_at if beats else None
    beat_alive = bool(last_beat_at and last_beat_at >= stale_before)
    issues = []
    if not beat_alive:
        issues.append(
            issue(
                ErrorCode.SERVICE_UNAVAILABLE,
                "celery.beat",
                "No fresh Celery beat heartbeat: scheduled work is not running.",
                "Start beat: celery -A controlplane beat -l INFO (a second one is safe: it stands by)",
            )
        )
    if not workers:
        issues.append(
            issue(
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
        "last_tick_at": last_tick_at(tenant_id),
    }
    return state, issues


def supervisor_state() -> tuple[dict, list[dict]]:
    """The supervisor's heartbeat (oversight.supervisor.heartbeat): stale is DEGRADED, nothing watches the bots."""
    state = supervisor_heartbeat()
    if not state["stale"]:
        return state, []
    last = state["last_run_at"].isoformat() if state["last_run_at"] else "never"
    return state, [
        issue(
            ErrorCode.SERVICE_UNAVAILABLE,
            "supervisor",
            f"The supervisor has not finished a run within {int(state['stale_after_seconds'])} s (last: {last}): "
            "no trigger watches the bots.",
            "Start beat and a worker: celery -A controlplane beat -l INFO and celery -A controlplane worker "
            "-Q ticks,oms,backtests,verify,default (the supervisor runs on the default queue).",
        )
    ]


def quote_collector_state(configured_providers: list[str]) -> tuple[dict | None, list[dict]]:
    """The quote collector's heartbeat, for a tenant that uses it: one that has configured a crypto venue (the
    collector collects for exactly those, execution.marketdata.quotes.collector_users). For any other tenant it is
    None and never degrades: their ticks read bars, not quotes. Stale or absent is DEGRADED: the arbitrage scans
    would only find stale quotes (and say so, through usable_quotes)."""
    state = quote_collector_heartbeat(configured_providers=configured_providers)
    if state is None:
        return None, []
    if not state["stale"]:
        return state, []
    last = state["last_seen_at"].isoformat() if state["last_seen_at"] else "never"
    return state, [
        issue(
            ErrorCode.SERVICE_UNAVAILABLE,
            "quotes.collector",
            f"The quote collector has not finished a round within {state['stale_after_seconds']} s (last: {last}): "
            f"quotes from {', '.join(state['configured_venues'])} are not being refreshed.",
            "Start it: python manage.py collect_quotes (make run starts it beside the worker).",
        )
    ]


def system_status(*, redis_url: str | None = None) -> dict:
    """The whole answer, for the current tenant (the declared hook ``status.compute`` and GET
    /api/system/status)."""
    tenant_id = tenancy.require_tenant_id()
    blockers: list[dict] = []
    degradations: list[dict] = []
    database_problem = probe_database()
    # Redis first: when it is hung, the breaker reads below then fail at once instead of each paying a timeout.
    redis_problem = probe_redis(redis_url)
    scheduler: dict = {"beat_alive": False, "last_beat_at": None, "workers": [], "last_tick_at": None}
    integrations: dict = {}
    supervisor: dict | None = None
    quote_collector: dict | None = None
    if database_problem:
        blockers.append(database_problem)
    else:
        key_blockers, problems, integrations = integration_blockers_and_problems()
        blockers.extend(key_blockers)
        degradations.extend(problems)
        scheduler, scheduler_issues = scheduler_state(tenant_id)
        degradations.extend(scheduler_issues)
        supervisor, supervisor_issues = supervisor_state()
        degradations.extend(supervisor_issues)
        quote_collector, collector_issues = quote_collector_state(integrations["configured"])
        degradations.extend(collector_issues)
        degradations.extend(market_data_problems(tenant_id))
    if redis_problem:
        degradations.append(redis_problem)
    status = BLOCKED if blockers else DEGRADED if degradations else OK
    return {
        "status": status,
        "autonomy_allowed": status == OK,
        "blockers": [{**b, "severity": "blocking"} for b in blockers]
        + [{**d, "severity": "degrading"} for d in degradations],
        "bots": {"byAutonomyTier": tier_counts(tenant_id)},
        "scheduler": scheduler,
        "supervisor": supervisor,
        "quote_collector": quote_collector,
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
        "supervisor": None,
        "quote_collector": None,
        "integrations": None,
        "checked_at": timezone.now(),
        "trace_id": current_trace_id(),
    }
