"""Answers that report money or counts say how fresh they are, and carry ``degraded`` with the status trace id
while the system is not OK (DESIGN.md invariant 11)."""

from datetime import datetime

import pytest
from django.utils import timezone

from bots import services as bot_services
from controlplane import tenancy
from controlplane.models import ProcessHeartbeat
from controlplane.status import forget_cached_status
from controlplane.trace import is_well_formed
from integrations import services as integration_services
from integrations.providers.databento import fake as databento_fake
from tests.provider_fixtures import clean_breakers, integration_settings  # noqa: F401 (autouse fixtures)
from tests.status_fixtures import record_supervisor_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_cached_status():
    """The status is cached per process for a few seconds; each test measures its own."""
    forget_cached_status()
    yield
    forget_cached_status()


@pytest.fixture
def bot(tenant_a, owner_a):
    with tenancy.tenant_context(tenant_a.id):
        return bot_services.bot_create(
            actor=owner_a,
            name="pnl-bot",
            strategy="ma_crossover",
            parameters={"fast": 5, "slow": 20},
            instruments=["ES"],
            venue="sim",
            data_source="imported",
        )


@pytest.fixture
def status_ok(tenant_a, owner_a, settings, httpserver):
    """Everything a fresh tenant lacks: the market-data key, verified, Redis verified, a fresh beat and worker."""
    settings.INTEGRATION_BASE_URLS = {"databento": httpserver.url_for("").rstrip("/")}
    databento_fake.serve_verify(httpserver)
    now = timezone.now()
    for kind in ("worker", "beat"):
        ProcessHeartbeat.objects.create(kind=kind, hostname=f"{kind}@test", pid=1, started_at=now, last_seen_at=now)
    record_supervisor_run(now)
    with tenancy.tenant_context(tenant_a.id):
        integration_services.credentials_set(
            provider="databento", values={"DATABENTO_API_KEY": "db-abcdefghijkl"}, actor=owner_a
        )
        integration_services.verify_provider(provider="databento", actor_name="test")
        integration_services.verify_provider(provider="redis", actor_name="test")
    forget_cached_status()


def test_a_fresh_tenants_pnl_is_marked_degraded_with_the_status_trace_id(api_viewer_a, bot):
    before = timezone.now()
    response = api_viewer_a.get(f"/api/bots/{bot.id}/pnl")
    body = response.json()
    assert response.status_code == 200 and body["realized_pnl"] == "0"
    assert body["degraded"] is True and body["system_status"] == "BLOCKED"
    assert is_well_formed(body["status_trace_id"]) and body["status_trace_id"] == response["X-Trace-Id"]
    assert datetime.fromisoformat(body["as_of"].replace("Z", "+00:00")) >= before
    again = api_viewer_a.get(f"/api/bots/{bot.id}/pnl").json()
    assert again["status_trace_id"] == body["status_trace_id"]  # the status's id, not the request's


def test_with_the_status_ok_the_pnl_is_not_degraded(api_viewer_a, bot, status_ok):
    body = api_viewer_a.get(f"/api/bots/{bot.id}/pnl").json()
    assert body["system_status"] == "OK" and body["degraded"] is False and body["status_trace_id"] is None
    assert body["as_of"]


@pytest.mark.parametrize("path", ["/api/integrations/status", "/api/integrations/usage"])
def test_proof_of_use_counts_are_marked_degraded_on_a_fresh_tenant(api_viewer_a, path):
    body = api_viewer_a.get(path).json()
    assert body["degraded"] is True and body["system_status"] == "BLOCKED" and is_well_formed(body["status_trace_id"])
    assert body["as_of"]


@pytest.mark.parametrize("path", ["/api/integrations/status", "/api/integrations/usage"])
def test_proof_of_use_counts_are_not_degraded_with_the_status_ok(api_viewer_a, status_ok, path):
    body = api_viewer_a.get(path).json()
    assert body["degraded"] is False and body["system_status"] == "OK" and body["status_trace_id"] is None


def test_a_reconcile_answer_reports_its_positions_with_the_status(api_operator_a, bot):
    body = api_operator_a.post(f"/api/bots/{bot.id}/reconcile").json()
    assert body["status"] == "MATCHED" and body["is_flat"] is True  # the reconciliation's own status stays its own
    assert body["system_status"] == "BLOCKED" and body["degraded"] is True and is_well_formed(body["status_trace_id"])
    assert body["as_of"]
