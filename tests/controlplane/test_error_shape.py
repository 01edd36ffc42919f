"""Every non-2xx API answer has the one shape, and an error answer leaves nothing half-written."""

import uuid

import pytest
from rest_framework.test import APIClient

from controlplane.errors import ErrorCode
from controlplane.models import AuditEvent
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db


def test_400_names_the_field(api_owner_a):
    body = assert_error(
        api_owner_a.post("/api/tenant/invitations", {"role": "emperor"}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert set(body["details"]) == {"role"}


def test_400_for_a_bad_filter_value_names_the_filter(api_owner_a):
    body = assert_error(api_owner_a.get("/api/audit-events?created_after=yesterday"), 400, "VALIDATION_ERROR")
    assert "created_after" in body["details"]


def test_400_malformed_json(api_owner_a):
    assert_error(
        api_owner_a.post("/api/tenant/invitations", data="{nope", content_type="application/json"),
        400,
        "MALFORMED_REQUEST",
    )


def test_401_without_credentials():
    response = APIClient().get("/api/me")
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Token")


def test_401_with_a_bad_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/me"), 401, "AUTHENTICATION_FAILED")


def test_403_for_a_role_that_does_not_allow_it(api_viewer_a):
    body = assert_error(
        api_viewer_a.post("/api/tenant/invitations", {"username": "x", "role": "viewer"}, format="json"),
        403,
        "PERMISSION_DENIED",
    )
    assert "owner" in body["message"]


def test_404_for_unknown_api_urls(api_owner_a):
    assert_error(api_owner_a.get("/api/no-such-thing"), 404, "NOT_FOUND")
    assert_error(APIClient().post("/api/no/such/thing", {}), 404, "NOT_FOUND")


def test_405_for_a_wrong_method(api_owner_a):
    response = api_owner_a.delete("/api/me")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response["Allow"]


@pytest.mark.urls("tests.controlplane.error_urls")
def test_409_rolls_back_what_the_request_wrote(api_owner_a):
    body = assert_error(api_owner_a.post("/api/test/conflict"), 409, "ILLEGAL_TRANSITION")
    assert body["details"] == {"current": "LAB", "requested": "LIVE"}
    assert not AuditEvent.unscoped.filter(action="half.written").exists()


@pytest.mark.urls("tests.controlplane.error_urls")
def test_429_says_when_to_retry():
    client = APIClient(REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}")
    first = client.get("/api/test/throttled")
    assert first.status_code == 200
    response = client.get("/api/test/throttled")
    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) > 0


@pytest.mark.urls("tests.controlplane.error_urls")
def test_500_leaks_no_stack_trace_or_secret_and_rolls_back(api_owner_a, json_log_lines):
    api_owner_a.raise_request_exception = False
    response = api_owner_a.post("/api/test/crash", HTTP_X_TRACE_ID="crash-trace-0001")
    body = assert_error(response, 500, "INTERNAL_ERROR")
    raw = response.content.decode()
    for leak in ("hunter2", "SELECT", "Traceback", "RuntimeError", 'File "'):
        assert leak not in raw
    assert body["trace_id"] == "crash-trace-0001"
    assert not AuditEvent.unscoped.filter(action="half.written").exists()
    assert any(
        line.get("trace_id") == "crash-trace-0001" and "RuntimeError" in line.get("exception", "")
        for line in json_log_lines()
    ), "the operator finds the stack trace in the log by the trace id"


def test_every_error_code_has_a_status_message_and_fix():
    for code in ErrorCode:
        assert 400 <= code.http_status < 600
        assert code.default_message and code.suggested_fix
