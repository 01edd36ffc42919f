import pytest
from rest_framework.test import APIClient

from controlplane import tenancy
from controlplane.models import AuditEvent
from controlplane.trace import is_well_formed

pytestmark = pytest.mark.django_db


def test_a_well_formed_incoming_trace_id_is_kept():
    response = APIClient().get("/api/health", HTTP_X_TRACE_ID="frontend-4f2a9c1e")
    assert response["X-Trace-Id"] == "frontend-4f2a9c1e"
    assert response.json()["trace_id"] == "frontend-4f2a9c1e"


@pytest.mark.parametrize("bad", ["", "short", "has spaces in it", "x" * 200, "<script>alert(1)</script>"])
def test_anything_else_is_replaced_with_a_fresh_id(bad):
    response = APIClient().get("/api/health", HTTP_X_TRACE_ID=bad)
    assert response["X-Trace-Id"] != bad
    assert is_well_formed(response["X-Trace-Id"])


def test_each_request_without_one_gets_its_own():
    client = APIClient()
    assert client.get("/api/health")["X-Trace-Id"] != client.get("/api/health")["X-Trace-Id"]


def test_the_trace_id_is_in_the_log_lines_of_its_request(json_log_lines):
    APIClient().get("/api/no-such-endpoint", HTTP_X_TRACE_ID="trace-in-logs-1")
    lines = [line for line in json_log_lines() if line.get("trace_id") == "trace-in-logs-1"]
    assert any("Not Found" in line["event"] for line in lines)
    assert all({"timestamp", "level", "logger"} <= set(line) for line in lines)


def test_the_trace_id_is_stored_on_audit_events(api_owner_a, tenant_a):
    response = api_owner_a.post(
        "/api/tenant/invitations",
        {"username": "newcomer", "role": "viewer"},
        format="json",
        HTTP_X_TRACE_ID="audit-trace-0042",
    )
    assert response.status_code == 202, response.json()
    with tenancy.tenant_context(tenant_a.id):
        event = AuditEvent.objects.get(action="invitation.create", after_state__invitee="newcomer")
    assert event.trace_id == "audit-trace-0042"
    assert event.actor == "owner-a"


def _publish_headers() -> dict:
    """The headers a task is published with, as Celery's before_task_publish signal hands them to its receivers."""
    from celery import signals

    headers: dict = {}
    signals.before_task_publish.send(
        sender="probe.task",
        body=((), {}, {}),
        exchange="",
        routing_key="default",
        headers=headers,
        properties={},
        declare=[],
        retry_policy=None,
    )
    return headers


def test_each_task_published_outside_any_trace_gets_a_fresh_id_of_its_own():
    from controlplane.trace import clear_trace_id

    clear_trace_id()  # as in the beat process, or a shell: nothing bound
    first, second = _publish_headers()["trace_id"], _publish_headers()["trace_id"]
    assert is_well_formed(first) and is_well_formed(second) and first != second

    from controlplane.trace import bound_trace_id

    assert bound_trace_id() is None, "publishing bound a trace id in the publisher"


def test_a_task_published_inside_a_trace_keeps_it():
    from controlplane.trace import bind_trace_id, clear_trace_id

    bind_trace_id("parent-trace-7f3e21")
    try:
        assert _publish_headers()["trace_id"] == "parent-trace-7f3e21"
        assert _publish_headers()["trace_id"] == "parent-trace-7f3e21"
    finally:
        clear_trace_id()
