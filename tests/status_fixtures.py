"""A system status that is really OK, made from real components: what a LIVE bot needs before any order may open
or grow its position (execution.risk.state reads the cached status; AUTONOMY_NOT_ALLOWED otherwise).

A fresh test tenant is BLOCKED (no market-data key) and has no beat or worker; this sets the market-data key and
verifies it against a local server in Databento's shape, verifies Redis (the real one), records fresh beat,
worker, quote collector and supervisor heartbeats, and verifies whatever other provider the test's bots use (the test serves it)."""

from __future__ import annotations

from django.utils import timezone

from controlplane import tenancy
from controlplane.models import ProcessHeartbeat
from controlplane.status import cached_system_status, forget_cached_status
from integrations import services as integration_services
from integrations.providers.databento import fake as databento_fake
from oversight.models import SupervisorRun


def record_supervisor_run(at=None) -> SupervisorRun:
    """A finished supervisor run at ``at`` (now): the supervisor's heartbeat, as beat and worker heartbeats are
    recorded above."""
    at = at or timezone.now()
    fence = (SupervisorRun.objects.order_by("-fence").values_list("fence", flat=True).first() or 0) + 1
    return SupervisorRun.objects.create(
        fence=fence, hostname="supervisor@status-ok", pid=1, started_at=at, finished_at=at
    )


def make_system_ok(*, tenant, owner, httpserver, settings, verify: tuple[str, ...] = ()) -> dict:
    """Make ``tenant``'s status OK and return it (fails the test if it is not). ``httpserver`` serves Databento's
    dataset list next to whatever the test already points at it."""
    urls = dict(getattr(settings, "INTEGRATION_BASE_URLS", {}) or {})
    urls["databento"] = httpserver.url_for("").rstrip("/")
    settings.INTEGRATION_BASE_URLS = urls
    databento_fake.serve_verify(httpserver)
    now = timezone.now()
    # The quote collector's too: a tenant that configured a crypto venue depends on it (oversight.status).
    for kind in ("worker", "beat", "quote_collector"):
        ProcessHeartbeat.objects.create(
            kind=kind, hostname=f"{kind}@status-ok", pid=1, started_at=now, last_seen_at=now
        )
    record_supervisor_run(now)
    with tenancy.tenant_context(tenant.id):
        integration_services.credentials_set(
            provider="databento", values={"DATABENTO_API_KEY": "db-abcdefghijkl"}, actor=owner
        )
        for provider in ("databento", "redis", *verify):
            result = integration_services.verify_provider(provider=provider, actor_name="test")
            assert result.status == "ok", (provider, result.error_code)
        forget_cached_status()
        status = cached_system_status()
    assert status["status"] == "OK" and status["autonomy_allowed"] is True, status["blockers"]
    return status
