"""The observatory dashboard (the admin index): system status with every blocker and where it is fixed, bots by
stage and tier, the scheduler, the supervisor (heartbeat and latest actions), open incidents, active kill switches and the latest audit events.

Every number is a count made now; what cannot be read is shown as unknown, never as zero.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from bots.models import Bot, GlobalKillSwitch, Stage, TenantKillSwitch
from controlplane.models import AuditEvent, ProcessHeartbeat
from execution.models import RiskIncident, TickBatch
from observatory.banner import page_status
from oversight.models import SupervisorBreach
from oversight.supervisor.heartbeat import supervisor_heartbeat
from oversight.supervisor.ladder import INCIDENT_KIND as SUPERVISOR_INCIDENT

RECENT_HEARTBEATS = timedelta(hours=24)
LATEST_AUDIT_EVENTS = 10
OPEN_INCIDENTS_SHOWN = 10
SUPERVISOR_ACTIONS_SHOWN = 10


def fix_link(component: str) -> str | None:
    """The console page where a blocker of ``component`` is fixed."""
    connections = reverse("observatory:connections")
    if component == "integrations.market_data":
        return f"{connections}#category-market_data"
    if component.startswith("integrations.") or component == "redis":
        return f"{connections}#provider-{component.split('.')[-1]}"
    if component.startswith("celery.") or component in ("supervisor", "quotes.collector"):
        return reverse("admin:controlplane_processheartbeat_changelist")
    if component.startswith("market_data") or component.startswith("marketdata"):
        return reverse("admin:execution_tickbatch_changelist")
    return None


def _blockers(status: dict) -> list[dict]:
    return [{**b, "fix_url": fix_link(b.get("component", ""))} for b in status.get("blockers") or []]


def _scheduler() -> dict:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    processes = [
        {
            "kind": h.get_kind_display(),
            "hostname": h.hostname,
            "pid": h.pid,
            "queues": h.queues,
            "started_at": h.started_at,
            "last_seen_at": h.last_seen_at,
            "stale": h.last_seen_at < stale_before,
        }
        for h in ProcessHeartbeat.objects.filter(last_seen_at__gte=now - RECENT_HEARTBEATS).order_by(
            "kind", "-last_seen_at"
        )
    ]
    last_ticks = []
    for timeframe in settings.TICK_TIMEFRAMES:
        batch = TickBatch.objects.filter(timeframe=timeframe).order_by("-as_of").values("as_of", "trace_id").first()
        last_ticks.append(
            {
                "timeframe": timeframe,
                "as_of": batch["as_of"] if batch else None,
                "trace_id": batch["trace_id"] if batch else None,
            }
        )
    return {
        "processes": processes,
        "beat_seen": any(p["kind"] == ProcessHeartbeat.Kind.BEAT.label and not p["stale"] for p in processes),
        "workers_seen": sum(1 for p in processes if p["kind"] == ProcessHeartbeat.Kind.WORKER.label and not p["stale"]),
        "last_ticks": last_ticks,
        "stale_after_seconds": settings.HEARTBEAT_STALE_SECONDS,
    }


def _supervisor() -> dict:
    """The supervisor's heartbeat (platform-wide) and this tenant's latest supervisor actions and open breaches."""
    actions = [
        {
            "id": i.id,
            "bot": i.bot,
            "trigger": i.details.get("trigger"),
            "step": i.details.get("step"),
            "value": i.details.get("value"),
            "threshold": i.details.get("threshold"),
            "unknown": i.details.get("unknown"),
            "reason": i.details.get("reason"),
            "changed": i.details.get("changed"),
            "at": i.opened_at,
            "trace_id": i.trace_id,
        }
        for i in RiskIncident.objects.filter(kind=SUPERVISOR_INCIDENT)
        .select_related("bot")
        .order_by("-opened_at", "-id")[:SUPERVISOR_ACTIONS_SHOWN]
    ]
    return {
        "heartbeat": supervisor_heartbeat(),
        "actions": actions,
        "open_breaches": SupervisorBreach.objects.filter(cleared_at__isnull=True, step__gt=0).count(),
    }


def _counts(field: str, choices) -> list[dict]:
    found = {row[field]: row["n"] for row in Bot.objects.values(field).annotate(n=Count("id"))}
    return [{"value": value, "label": label, "count": found.get(value, 0)} for value, label in choices]


def _kill_switches() -> dict:
    platform = GlobalKillSwitch.objects.filter(pk=GlobalKillSwitch.SINGLETON_ID).first()
    tenant = TenantKillSwitch.objects.first()
    killed = Bot.objects.filter(killed=True)
    killed_bots = list(killed.order_by("-killed_at").values("id", "name", "killed_at", "killed_by", "kill_reason")[:20])
    return {
        "platform": platform if platform and platform.killed else None,
        "tenant": tenant if tenant and tenant.killed else None,
        "bots": killed_bots,
        "bots_total": killed.count(),
    }


def dashboard_data(request) -> dict:
    status = page_status(request)
    if status is None:
        return {"observatory": None}
    open_incidents = RiskIncident.objects.filter(status=RiskIncident.Status.OPEN)
    return {
        "observatory": {
            "status": status,
            "blockers": _blockers(status),
            "bots_by_stage": _counts("stage", Stage.choices),
            "bots_by_tier": _counts("autonomy_tier", Bot.AutonomyTier.choices),
            "scheduler": _scheduler(),
            "supervisor": _supervisor(),
            "open_incidents": list(open_incidents.select_related("bot").order_by("-opened_at")[:OPEN_INCIDENTS_SHOWN]),
            "open_incidents_total": open_incidents.count(),
            "kill_switches": _kill_switches(),
            "audit_events": list(AuditEvent.unscoped.order_by("-created_at", "-id")[:LATEST_AUDIT_EVENTS]),
            "rendered_at": timezone.now(),
        }
    }


def dashboard_callback(request, context: dict) -> dict:
    context.update(dashboard_data(request))
    return context
