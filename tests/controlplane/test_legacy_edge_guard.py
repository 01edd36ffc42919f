import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path,replacement",
    [
        ("/functions/v1/promote-bot", "POST /api/bots/{id}/promote"),
        ("/functions/v1/system-proof", "GET /api/system/status"),
        ("/functions/v1/create-starter-bots", "POST /api/bots/starter-pack"),
        ("/functions/v1/reconcile-bot-execution/extra", "POST /api/bots/{id}/reconcile"),
    ],
)
def test_legacy_edge_calls_are_refused_logged_and_pointed_elsewhere(path, replacement, json_log_lines):
    response = APIClient().post(path, {"bot_id": 1}, format="json", HTTP_X_TRACE_ID="edge-caller-0001")
    assert response.status_code == 410
    body = response.json()
    assert body["error_code"] == "EDGE_CALL_BLOCKED"
    assert replacement in body["suggested_fix"]
    assert body["trace_id"] == "edge-caller-0001"
    assert any(
        "[EDGE_CALL_BLOCKED]" in line["event"] and line["trace_id"] == "edge-caller-0001" for line in json_log_lines()
    )


def test_an_unknown_edge_function_is_refused_too():
    response = APIClient().get("/functions/v1/some-forgotten-function")
    assert response.status_code == 410
    assert response.json()["error_code"] == "EDGE_CALL_BLOCKED"
