"""System status, the Keys Needed checklist and command, and the safe-start gate."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from bots import services as bot_services
from bots.models import Bot, Stage
from controlplane import tenancy
from controlplane.errors import ControlPlaneError
from controlplane.models import ProcessHeartbeat
from integrations import safe_start as gates, services
from integrations.providers.databento import fake as databento_fake
from tests.status_fixtures import record_supervisor_run


def _blocking(body):
    return [b for b in body["blockers"] if b["severity"] == "blocking"]


def _fresh_heartbeats():
    now = timezone.now()
    for kind in ("worker", "beat"):
        ProcessHeartbeat.objects.create(kind=kind, hostname=f"{kind}@test", pid=1, started_at=now, last_seen_at=now)
    record_supervisor_run(now)


def _set_databento(tenant, owner):
    with tenancy.tenant_context(tenant.id):
        services.credentials_set(provider="databento", values={"DATABENTO_API_KEY": "db-abcdefghijkl"}, actor=owner)


@pytest.mark.django_db
def test_fresh_install_is_blocked_with_one_blocker_per_missing_key(api_viewer_a):
    body = api_viewer_a.get("/api/system/status").json()
    assert body["status"] == "BLOCKED" and body["autonomy_allowed"] is False and body["trace_id"]
    [blocker] = _blocking(body)
    assert blocker["code"] == "INTEGRATION_KEY_MISSING" and "DATABENTO_API_KEY" in blocker["suggested_fix"]
    assert body["bots"] == {"byAutonomyTier": {"T0": 0, "T1": 0, "T2": 0, "T3": 0}}  # the backtests app's hook
    assert body["scheduler"]["last_tick_at"] is None and body["scheduler"]["beat_alive"] is False


@pytest.mark.django_db
def test_keys_needed_command_exits_1_until_needed_keys_are_set(tenant_a, owner_a):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("keys_needed", stdout=out)
    assert exit_.value.code == 1 and "DATABENTO_API_KEY" in out.getvalue() and "MISSING" in out.getvalue()
    _set_databento(tenant_a, owner_a)
    out = io.StringIO()
    call_command("keys_needed", "--tenant", "tenant-a", stdout=out)
    assert "Every key an enabled capability needs is set" in out.getvalue()


@pytest.mark.django_db
def test_entering_a_key_moves_the_provider_to_configured_and_unblocks(api_owner_a, tenant_a, owner_a):
    _set_databento(tenant_a, owner_a)
    row = {r["provider"]: r for r in api_owner_a.get("/api/integrations/status").json()["providers"]}["databento"]
    assert row["configured"] is True and row["connected"] is False and row["error_code"] == "INTEGRATION_UNVERIFIED"
    body = api_owner_a.get("/api/system/status").json()
    assert body["status"] == "DEGRADED" and _blocking(body) == []
    assert api_owner_a.get("/api/integrations/keys-needed").json()["complete"] is True


@pytest.mark.django_db
def test_ok_only_when_every_check_passed_and_degraded_when_redis_is_down(tenant_a, owner_a, settings, httpserver):
    from oversight.status import system_status

    settings.INTEGRATION_BASE_URLS = {"databento": httpserver.url_for("").rstrip("/")}
    databento_fake.serve_verify(httpserver)
    _set_databento(tenant_a, owner_a)
    _fresh_heartbeats()
    with tenancy.tenant_context(tenant_a.id):
        services.verify_provider(provider="databento", actor_name="test")
        services.verify_provider(provider="redis", actor_name="test")
        assert system_status()["status"] == "OK"
        assert system_status()["autonomy_allowed"] is True
        down = system_status(redis_url="redis://127.0.0.1:1/0")
    assert down["status"] == "DEGRADED" and down["autonomy_allowed"] is False
    assert any(b["component"] == "redis" for b in down["blockers"])


@pytest.mark.django_db
def test_stale_heartbeats_degrade(tenant_a, owner_a):
    from oversight.status import system_status

    _set_databento(tenant_a, owner_a)
    old = timezone.now() - timedelta(hours=1)
    ProcessHeartbeat.objects.create(kind="beat", hostname="b", pid=1, started_at=old, last_seen_at=old)
    with tenancy.tenant_context(tenant_a.id):
        body = system_status()
    components = {b["component"] for b in body["blockers"]}
    assert {"celery.beat", "celery.worker"} <= components and body["scheduler"]["last_beat_at"] == old


@pytest.mark.django_db
def test_status_reads_bots_and_the_scheduler_and_bot_providers_become_required(api_owner_a, owner_a, tenant_a):
    """What the judging layer reads directly: bots per autonomy tier, the runners' last tick, and the providers the
    tenant's bots use (a LIVE bot on Tradovate makes each Tradovate key a blocker)."""
    tick = timezone.now()
    with tenancy.tenant_context(tenant_a.id):
        paper = bot_services.bot_create(actor=owner_a, name="paper", strategy="ma_crossover", instruments=["ES"])
        live = bot_services.bot_create(
            actor=owner_a, name="live", strategy="ma_crossover", instruments=["ES"], venue="tradovate"
        )
        Bot.objects.filter(pk=live.pk).update(stage=Stage.LIVE)
        runner = bot_services.runner_start(bot_id=paper.id, actor=owner_a)
        type(runner).objects.filter(pk=runner.pk).update(last_tick_at=tick)
    body = api_owner_a.get("/api/system/status").json()
    assert body["bots"]["byAutonomyTier"] == {"T0": 2, "T1": 0, "T2": 0, "T3": 0}
    assert body["scheduler"]["last_tick_at"].replace("Z", "+00:00") == tick.isoformat()
    missing = {b["component"] for b in _blocking(body)}
    assert "integrations.tradovate" in missing
    assert len([b for b in _blocking(body) if b["component"] == "integrations.tradovate"]) == 7


@pytest.mark.django_db
def test_sim_bot_on_imported_bars_has_no_blockers(tenant_a):
    with tenancy.tenant_context(tenant_a.id):
        assert gates.safe_start_blockers(venue="sim", data_source="imported", stage="paper") == []
        gates.raise_if_blocked(venue="sim", data_source="imported", stage="paper")


@pytest.mark.django_db
def test_gate_lists_missing_and_unverified_and_raises_409(tenant_a, owner_a):
    _set_databento(tenant_a, owner_a)
    with tenancy.tenant_context(tenant_a.id):
        blockers = gates.safe_start_blockers(venue="tradovate", data_source="databento", stage="live")
        by_provider = {b["provider"]: b for b in blockers}
        assert by_provider["tradovate"]["code"] == "INTEGRATION_KEY_MISSING"
        assert "TRADOVATE_CID" in by_provider["tradovate"]["missing_env_vars"]
        assert by_provider["databento"]["code"] == "INTEGRATION_UNVERIFIED"
        with pytest.raises(ControlPlaneError) as error:
            gates.raise_if_blocked(venue="tradovate", data_source="databento", stage="live")
    assert error.value.http_status == 409 and error.value.code == "INTEGRATION_KEY_MISSING"
    assert len(error.value.details["blockers"]) == 2 and error.value.suggested_fix


@pytest.mark.django_db
def test_keys_needed_page_is_linked_from_the_admin_index(client, owner_a, tenant_a, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    owner_a.is_staff = True
    owner_a.save()
    client.force_login(owner_a)
    assert "/admin/integrations/integrationcredential/keys-needed/" in client.get("/admin/").content.decode()
    page = client.get("/admin/integrations/integrationcredential/keys-needed/")
    assert page.status_code == 200 and "DATABENTO_API_KEY" in page.content.decode()
    response = client.post(
        "/admin/integrations/integrationcredential/keys-needed/",
        {"provider": "databento", "DATABENTO_API_KEY": "db-abcdefghijkl"},
    )
    assert response.status_code == 302
    page = client.get("/admin/integrations/integrationcredential/keys-needed/").content.decode()
    assert "db-abcdefghijkl" not in page and "ends in …ijkl" in page
