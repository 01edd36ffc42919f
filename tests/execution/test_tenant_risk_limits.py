"""The tenant's own risk limits over the API: owners only, validated by the parser the risk engine reads them with,
audited with the old and new limits, and a change needs a fresh second factor."""

import pytest

from controlplane import tenancy
from controlplane.models import AuditEvent
from execution.models import TradingControl
from tests.conftest import present_second_factor

pytestmark = pytest.mark.django_db

LIMITS = {"max_daily_loss": "500", "max_orders_per_minute": 30, "allowed_instruments": ["ES", "NQ"]}


def _put(client, limits, reason="tighter after the drill"):
    return client.put("/api/tenant/risk-limits", {"risk_limits": limits, "reason": reason}, format="json")


def test_a_tenant_without_limits_reads_none(api_owner_a):
    answer = api_owner_a.get("/api/tenant/risk-limits")
    assert answer.status_code == 200 and answer.json() == {"risk_limits": {}, "set_by": None, "updated_at": None}


def test_only_owners_read_and_set_them(api_operator_a, api_viewer_a):
    for client in (api_operator_a, api_viewer_a):
        assert client.get("/api/tenant/risk-limits").json()["error_code"] == "PERMISSION_DENIED"
        assert _put(client, LIMITS).json()["error_code"] == "PERMISSION_DENIED"


def test_a_change_needs_a_step_up_and_is_audited(api_owner_a, tenant_a):
    refused = _put(api_owner_a, LIMITS)
    assert (refused.status_code, refused.json()["error_code"]) == (403, "STEP_UP_REQUIRED")
    with tenancy.tenant_context(tenant_a.id):
        assert not TradingControl.objects.exists()
    present_second_factor(api_owner_a)
    answer = _put(api_owner_a, LIMITS)
    assert answer.status_code == 200, answer.content
    assert answer.json()["risk_limits"] == LIMITS and answer.json()["set_by"] == "owner-a"
    assert api_owner_a.get("/api/tenant/risk-limits").json()["risk_limits"] == LIMITS
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="tenant.risk_limits.set")
    assert event.before_state == {"risk_limits": {}}
    assert event.after_state == {"risk_limits": LIMITS, "reason": "tighter after the drill"}


def test_an_unreadable_limit_is_refused_by_name(api_owner_a, tenant_a):
    present_second_factor(api_owner_a)
    refused = _put(api_owner_a, {"max_daily_loss": "-5"})
    assert refused.status_code == 400
    assert "max_daily_loss" in refused.json()["details"]["risk_limits"][0]
    assert _put(api_owner_a, LIMITS, reason=" ").status_code == 400
    with tenancy.tenant_context(tenant_a.id):
        assert not TradingControl.objects.filter(risk_limits__has_key="max_daily_loss").exists()
