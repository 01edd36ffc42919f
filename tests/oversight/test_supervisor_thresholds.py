"""Tenant overrides of the supervisor's thresholds: owner only, validated whole by one schema (a bad field is a
400 naming it and nothing is saved), audited, and read by the triggers."""

import pytest

from controlplane import tenancy
from controlplane.models import AuditEvent
from oversight.models import SupervisorBreach, SupervisorPolicy
from oversight.supervisor.sweep import supervisor_sweep
from tests.conftest import client_for, present_second_factor
from tests.oversight.conftest import add_runner

pytestmark = pytest.mark.django_db
URL = "/api/tenant/supervisor-thresholds"


@pytest.fixture
def api_owner_a(owner_a):
    """The owner's API client presenting a current authenticator code: the writes here need a step-up."""
    return present_second_factor(client_for(owner_a))


def test_changing_the_thresholds_needs_a_step_up_and_saves_nothing_without(owner_a, tenant_a):
    answer = client_for(owner_a).put(URL, {"overrides": {"tick_errors": 5}}, format="json")
    assert answer.status_code == 403 and answer.json()["error_code"] == "STEP_UP_REQUIRED"
    with tenancy.tenant_context(tenant_a.id):
        assert not SupervisorPolicy.objects.exists()


def test_an_owner_reads_defaults_and_overrides_them_audited(api_owner_a, tenant_a):
    body = api_owner_a.get(URL).json()
    assert body["overrides"] == {} and body["effective"]["tick_errors"] == 3 == body["defaults"]["tick_errors"]
    answer = api_owner_a.put(URL, {"overrides": {"tick_errors": 5, "reject_rate": 0.25}}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["effective"]["tick_errors"] == 5 and answer.json()["effective"]["reject_rate"] == 0.25
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="supervisor.thresholds_set")
    assert event.before_state == {"overrides": {}}
    assert event.after_state == {"overrides": {"tick_errors": 5, "reject_rate": 0.25}}


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"tick_errors": 0}, "tick_errors"),
        ({"reject_rate": 1.5}, "reject_rate"),
        ({"stale_bars": 2.5}, "stale_bars"),
        ({"min_parity": "high"}, "min_parity"),
        ({"tick_errors": 4, "no_such_threshold": 1}, "no_such_threshold"),
    ],
)
def test_a_bad_override_is_a_400_naming_the_field_and_nothing_is_saved(api_owner_a, tenant_a, overrides, field):
    answer = api_owner_a.put(URL, {"overrides": overrides}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["error_code"] == "VALIDATION_ERROR" and list(body["details"]) == [field]
    with tenancy.tenant_context(tenant_a.id):
        assert not SupervisorPolicy.objects.exists()
        assert not AuditEvent.objects.filter(action="supervisor.thresholds_set").exists()


def test_only_an_owner_reads_or_changes_thresholds(operator_a, viewer_a):
    for user in (operator_a, viewer_a):
        client = client_for(user)
        assert client.get(URL).status_code == 403
        assert client.put(URL, {"overrides": {"tick_errors": 9}}, format="json").status_code == 403


def test_a_tenant_override_is_what_the_trigger_compares_with(api_owner_a, make_bot, owner_b, tenant_b):
    assert api_owner_a.put(URL, {"overrides": {"tick_errors": 5}}, format="json").status_code == 200
    mine = make_bot("mine")
    theirs = make_bot("theirs", tenant=tenant_b, owner=owner_b)
    add_runner(mine, errors=4)
    add_runner(theirs, errors=4)
    supervisor_sweep()
    with tenancy.tenant_context(mine.tenant_id):
        assert not SupervisorBreach.objects.filter(trigger="tick_errors").exists()  # 4 < 5 here
    with tenancy.tenant_context(theirs.tenant_id):
        breach = SupervisorBreach.objects.get(trigger="tick_errors")  # 4 >= 3, the default, there
    assert (breach.bot_id, breach.threshold) == (theirs.id, 3)
