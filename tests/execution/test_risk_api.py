"""Operators set trading states and resolve risk incidents over the API; each change is audited, read by the risk
checks, and invisible to other tenants."""

import pytest

from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import RiskIncident
from execution.risk.checks import TradingState
from execution.risk.state import risk_scopes_for_bots
from tests.execution.conftest import T0

pytestmark = pytest.mark.django_db


def _incident(tenant, bot=None, kind="max_position"):
    with tenancy.tenant_context(tenant.id):
        return RiskIncident.objects.create(bot=bot, kind=kind, details={"limit": 1}, trace_id="t-incident")


def test_an_operator_sets_a_bots_trading_state_and_the_risk_check_reads_it(
    api_operator_a, api_viewer_a, tenant_a, es, trading_bot
):
    bot = trading_bot()
    url = f"/api/bots/{bot.id}/trading-state"
    assert api_viewer_a.get(url).json() | {"updated_at": None} == {
        "scope": "bot",
        "bot_id": bot.id,
        "state": "ACTIVE",
        "reason": "",
        "set_by": None,
        "updated_at": None,
    }
    assert api_viewer_a.post(url, {"state": "HALTED", "reason": "x"}, format="json").status_code == 403

    response = api_operator_a.post(url, {"state": "REDUCE_ONLY", "reason": "venue flaky"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "REDUCE_ONLY" and response.json()["set_by"] == "operator-a"
    assert api_operator_a.get(url).json()["reason"] == "venue flaky"
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="trading_state.set")
        bot_scope, tenant_scope = risk_scopes_for_bots(bots=[bot], instrument=es, at=T0)[bot.id]
    assert (event.resource_type, event.resource_id, event.actor) == ("bot", str(bot.id), "operator-a")
    assert event.before_state["state"] == "ACTIVE" and event.after_state["state"] == "REDUCE_ONLY"
    assert bot_scope.state.trading_state is TradingState.REDUCE_ONLY
    assert tenant_scope.state.trading_state is TradingState.ACTIVE

    # Setting the current state again changes nothing.
    api_operator_a.post(url, {"state": "REDUCE_ONLY", "reason": "again"}, format="json")
    with tenancy.tenant_context(tenant_a.id):
        assert AuditEvent.objects.filter(action="trading_state.set").count() == 1


def test_an_illegal_state_or_a_missing_reason_is_400_naming_the_field(api_operator_a, trading_bot):
    bot = trading_bot()
    for url in (f"/api/bots/{bot.id}/trading-state", "/api/tenant/trading-state"):
        bad = api_operator_a.post(url, {"state": "PAUSED", "reason": "x"}, format="json")
        assert bad.status_code == 400 and bad.json()["error_code"] == "VALIDATION_ERROR"
        assert set(bad.json()["details"]) == {"state"}
        missing = api_operator_a.post(url, {"state": "HALTED"}, format="json")
        assert missing.status_code == 400 and set(missing.json()["details"]) == {"reason"}


def test_the_tenant_state_halts_every_bot_and_stays_in_its_tenant(
    api_operator_a, api_owner_b, tenant_a, tenant_b, es, trading_bot, owner_b
):
    bot_a = trading_bot()
    bot_b = trading_bot(name="theirs", tenant=tenant_b, actor=owner_b)
    response = api_operator_a.post("/api/tenant/trading-state", {"state": "HALTED", "reason": "audit"}, format="json")
    assert response.status_code == 200 and response.json() | {"updated_at": None} == {
        "scope": "tenant",
        "bot_id": None,
        "state": "HALTED",
        "reason": "audit",
        "set_by": "operator-a",
        "updated_at": None,
    }
    assert api_owner_b.get("/api/tenant/trading-state").json()["state"] == "ACTIVE"
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="trading_state.set")
        assert (event.resource_type, event.resource_id) == ("tenant", str(tenant_a.id))
        assert (
            risk_scopes_for_bots(bots=[bot_a], instrument=es, at=T0)[bot_a.id][1].state.trading_state
            is TradingState.HALTED
        )
    with tenancy.tenant_context(tenant_b.id):
        assert (
            risk_scopes_for_bots(bots=[bot_b], instrument=es, at=T0)[bot_b.id][1].state.trading_state
            is TradingState.ACTIVE
        )


def test_another_tenants_bot_trading_state_is_404(api_operator_a, tenant_b, owner_b, trading_bot):
    theirs = trading_bot(name="theirs", tenant=tenant_b, actor=owner_b)
    url = f"/api/bots/{theirs.id}/trading-state"
    assert api_operator_a.get(url).status_code == 404
    refused = api_operator_a.post(url, {"state": "HALTED", "reason": "mine now"}, format="json")
    assert refused.status_code == 404 and refused.json()["error_code"] == "NOT_FOUND"
    with tenancy.tenant_context(tenant_b.id):
        assert not AuditEvent.objects.filter(action="trading_state.set").exists()


def test_incidents_are_listed_with_filters_and_only_the_tenants_own(
    api_viewer_a, tenant_a, tenant_b, owner_b, trading_bot
):
    bot = trading_bot()
    other = trading_bot(name="other")
    position = _incident(tenant_a, bot)
    breaker = _incident(tenant_a, other, kind="circuit_breaker")
    _incident(tenant_b, trading_bot(name="theirs", tenant=tenant_b, actor=owner_b), kind="secret_of_b")

    def ids(query=""):
        response = api_viewer_a.get(f"/api/risk/incidents{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [breaker.id, position.id]
    assert ids(f"?bot={bot.id}") == [position.id]
    assert ids("?kind=circuit_breaker") == [breaker.id]
    assert ids("?status=RESOLVED") == []
    assert ids("?status=OPEN&kind=max_position") == [position.id]


def test_an_operator_resolves_an_incident_once(api_operator_a, api_viewer_a, tenant_a, trading_bot):
    incident = _incident(tenant_a, trading_bot())
    url = f"/api/risk/incidents/{incident.id}/resolve"
    assert api_viewer_a.post(url, {"note": "seen"}, format="json").status_code == 403
    assert api_operator_a.post(url, {}, format="json").json()["details"].keys() == {"note"}

    response = api_operator_a.post(url, {"note": "limit raised after review"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["resolved_by"], body["resolution_note"]) == (
        "RESOLVED",
        "operator-a",
        "limit raised after review",
    )
    again = api_operator_a.post(url, {"note": "twice"}, format="json")
    assert again.status_code == 409 and again.json()["error_code"] == "ILLEGAL_TRANSITION"
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="risk_incident.resolve")
        assert RiskIncident.objects.get().resolution_note == "limit raised after review"
    assert event.after_state["note"] == "limit raised after review" and event.before_state == {"status": "OPEN"}


def test_another_tenants_incident_cannot_be_resolved(api_operator_a, tenant_b, owner_b, trading_bot):
    theirs = _incident(tenant_b, trading_bot(name="theirs", tenant=tenant_b, actor=owner_b))
    response = api_operator_a.post(f"/api/risk/incidents/{theirs.id}/resolve", {"note": "mine"}, format="json")
    assert response.status_code == 404 and response.json()["error_code"] == "NOT_FOUND"
    with tenancy.tenant_context(tenant_b.id):
        assert RiskIncident.objects.get().status == "OPEN"
