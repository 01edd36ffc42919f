"""Verify runs each provider's real check against a local server speaking the provider's shapes; results and
usage events are stored."""

import time

import pytest
from werkzeug import Response

from controlplane import tenancy
from integrations import services
from integrations.models import IntegrationUsageEvent, IntegrationVerification
from tests.conftest import present_second_factor

TRADOVATE = {
    "TRADOVATE_USERNAME": "alice",
    "TRADOVATE_PASSWORD": "pw-123456789012",
    "TRADOVATE_APP_ID": "cp",
    "TRADOVATE_APP_VERSION": "1.0",
    "TRADOVATE_CID": "42",
    "TRADOVATE_SECRET": "sec-abcdefghijkl",
    "TRADOVATE_ENVIRONMENT": "demo",
}


def _set(client, provider, values):
    present_second_factor(client)  # a venue key needs a fresh second factor
    response = client.post("/api/integrations/credentials", {"provider": provider, "values": values}, format="json")
    assert response.status_code == 201, response.json()


def _verify(client, provider):
    response = client.post("/api/integrations/verify", {"provider": provider}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _usage(tenant, provider):
    with tenancy.tenant_context(tenant.id):
        return list(IntegrationUsageEvent.objects.filter(provider=provider).order_by("id"))


@pytest.mark.django_db
def test_openai_verify_success_records_result_and_usage(api_owner_a, tenant_a, point_at):
    server = point_at("openai")
    server.expect_request("/v1/models", headers={"Authorization": "Bearer sk-good-123456789"}).respond_with_json(
        {"object": "list", "data": [{"id": "gpt-x", "object": "model"}]}
    )
    _set(api_owner_a, "openai", {"OPENAI_API_KEY": "sk-good-123456789"})
    body = _verify(api_owner_a, "openai")
    assert body["status"] == "ok" and body["error_code"] is None and body["latency_ms"] >= 0 and body["trace_id"]
    [event] = _usage(tenant_a, "openai")
    assert (event.operation, event.status, event.trace_id) == ("verify", "ok", body["trace_id"])
    row = {r["provider"]: r for r in api_owner_a.get("/api/integrations/status").json()["providers"]}["openai"]
    assert row["connected"] is True and row["proof_of_use_count_24h"] == 1 and row["last_verified_at"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "provider,path,key,answer,code",
    [
        (
            "openai",
            "/v1/models",
            "OPENAI_API_KEY",
            Response('{"error": {"code": "invalid_api_key"}}', 401),
            "INTEGRATION_AUTH_FAILED",
        ),
        (
            "anthropic",
            "/v1/models",
            "ANTHROPIC_API_KEY",
            Response('{"type": "error"}', 429, {"Retry-After": "3"}),
            "INTEGRATION_RATE_LIMITED",
        ),
        (
            "groq",
            "/openai/v1/models",
            "GROQ_API_KEY",
            Response("<html>gateway</html>", 200),
            "INTEGRATION_BAD_RESPONSE",
        ),
        (
            "gemini",
            "/v1beta/models",
            "GEMINI_API_KEY",
            Response(
                '{"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}',
                400,
            ),
            "INTEGRATION_AUTH_FAILED",
        ),
        (
            "openrouter",
            "/api/v1/key",
            "OPENROUTER_API_KEY",
            Response('{"data": "nope"}', 200),
            "INTEGRATION_BAD_RESPONSE",
        ),
        (
            "polygon",
            "/v3/reference/tickers",
            "POLYGON_API_KEY",
            Response('{"status": "ERROR", "error": "Unknown API Key"}', 401),
            "INTEGRATION_AUTH_FAILED",
        ),
        (
            "databento",
            "/v0/metadata.list_datasets",
            "DATABENTO_API_KEY",
            Response("{}", 200),
            "INTEGRATION_BAD_RESPONSE",
        ),
    ],
)
def test_failures_map_to_one_code_and_are_stored(api_owner_a, tenant_a, point_at, provider, path, key, answer, code):
    server = point_at(provider)
    server.expect_request(path).respond_with_response(answer)
    _set(api_owner_a, provider, {key: "key-abcdefghijkl"})
    body = _verify(api_owner_a, provider)
    assert body["status"] == "failed" and body["error_code"] == code and body["suggested_fix"]
    assert "key-abcdefghijkl" not in str(body)
    [event] = _usage(tenant_a, provider)
    assert (event.status, event.error_code) == ("error", code)
    row = {r["provider"]: r for r in api_owner_a.get("/api/integrations/status").json()["providers"]}[provider]
    assert row["configured"] is True and row["connected"] is False and row["error_code"] == code


@pytest.mark.django_db
def test_timeout_is_retried_then_reported(api_owner_a, tenant_a, point_at, settings):
    settings.INTEGRATION_TIMEOUT_SECONDS = 0.3
    settings.INTEGRATION_RETRY_ATTEMPTS = 2
    server = point_at("databento")
    calls = []

    def slow(request):
        calls.append(1)
        time.sleep(0.6)
        return Response("[]", 200, content_type="application/json")

    server.expect_request("/v0/metadata.list_datasets").respond_with_handler(slow)
    _set(api_owner_a, "databento", {"DATABENTO_API_KEY": "db-abcdefghijkl"})
    body = _verify(api_owner_a, "databento")
    assert body["error_code"] == "INTEGRATION_TIMEOUT"
    assert len(calls) == 2
    assert [e.error_code for e in _usage(tenant_a, "databento")] == ["INTEGRATION_TIMEOUT"]


@pytest.mark.django_db
def test_databento_success_uses_basic_auth_with_the_key(api_owner_a, tenant_a, point_at):
    server = point_at("databento")
    server.expect_request(
        "/v0/metadata.list_datasets", headers={"Authorization": "Basic ZGItYWJjZGVmZ2hpamtsOg=="}
    ).respond_with_json(["GLBX.MDP3", "XNAS.ITCH"])
    _set(api_owner_a, "databento", {"DATABENTO_API_KEY": "db-abcdefghijkl"})
    assert _verify(api_owner_a, "databento")["status"] == "ok"


@pytest.mark.django_db
def test_tradovate_verify_requests_a_token_then_lists_accounts(api_owner_a, tenant_a, point_at):
    server = point_at("tradovate")
    server.expect_ordered_request(
        "/auth/accesstokenrequest",
        method="POST",
        json={
            "name": "alice",
            "password": "pw-123456789012",
            "appId": "cp",
            "appVersion": "1.0",
            "cid": 42,
            "sec": "sec-abcdefghijkl",
        },
    ).respond_with_json(
        {"accessToken": "tok-1", "mdAccessToken": "md-1", "expirationTime": "2026-11-25T10:00:00Z", "userId": 7}
    )
    server.expect_ordered_request("/account/list", headers={"Authorization": "Bearer tok-1"}).respond_with_json(
        [{"id": 1, "name": "DEMO123", "accountType": "Customer", "active": True}]
    )
    _set(api_owner_a, "tradovate", TRADOVATE)
    body = _verify(api_owner_a, "tradovate")
    assert body["status"] == "ok", body
    server.check_assertions()


@pytest.mark.django_db
def test_a_tradovate_cid_that_is_not_the_numeric_key_id_is_refused_before_any_login(api_owner_a, tenant_a, point_at):
    server = point_at("tradovate")
    _set(api_owner_a, "tradovate", {**TRADOVATE, "TRADOVATE_CID": "my-app"})
    assert _verify(api_owner_a, "tradovate")["error_code"] == "INTEGRATION_KEY_MISSING"
    assert server.log == []


@pytest.mark.django_db
def test_tradovate_error_text_is_an_auth_failure(api_owner_a, tenant_a, point_at):
    point_at("tradovate").expect_request("/auth/accesstokenrequest", method="POST").respond_with_json(
        {"errorText": "Incorrect username or password. Please try again."}
    )
    _set(api_owner_a, "tradovate", TRADOVATE)
    assert _verify(api_owner_a, "tradovate")["error_code"] == "INTEGRATION_AUTH_FAILED"


@pytest.mark.django_db
def test_ironbeam_verify_authenticates_then_reads_the_trader(api_owner_a, point_at):
    server = point_at("ironbeam")
    server.expect_ordered_request(
        "/auth", method="POST", json={"username": "bob", "apiKey": "ib-abcdefghijkl"}
    ).respond_with_json({"token": "ib-tok", "status": "OK", "message": "OK"})
    server.expect_ordered_request("/info/trader", headers={"Authorization": "Bearer ib-tok"}).respond_with_json(
        {"accounts": ["51234"], "isLive": False, "traderId": "bob", "status": "OK", "message": "OK"}
    )
    _set(
        api_owner_a,
        "ironbeam",
        {"IRONBEAM_USERNAME": "bob", "IRONBEAM_API_KEY": "ib-abcdefghijkl", "IRONBEAM_ENVIRONMENT": "demo"},
    )
    assert _verify(api_owner_a, "ironbeam")["status"] == "ok"


@pytest.mark.django_db
def test_twilio_verify_fetches_the_account(api_owner_a, point_at):
    sid = "AC" + "0" * 32
    point_at("twilio").expect_request(f"/2010-04-01/Accounts/{sid}.json").respond_with_json(
        {"sid": sid, "friendly_name": "ops", "status": "active", "type": "Full"}
    )
    _set(api_owner_a, "twilio", {"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": "tw-abcdefghijkl"})
    assert _verify(api_owner_a, "twilio")["status"] == "ok"


@pytest.mark.django_db
def test_verify_without_keys_stores_key_missing_and_calls_nothing(api_owner_a, tenant_a):
    body = _verify(api_owner_a, "polygon")
    assert body["status"] == "failed" and body["error_code"] == "INTEGRATION_KEY_MISSING"
    assert _usage(tenant_a, "polygon") == []


@pytest.mark.django_db
def test_redis_verify_pings_and_a_closed_port_is_unreachable(api_owner_a, tenant_a, settings):
    assert _verify(api_owner_a, "redis")["status"] == "ok"
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_ENV_CREDENTIALS = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    assert _verify(api_owner_a, "redis")["error_code"] == "INTEGRATION_UNREACHABLE"


@pytest.mark.django_db
def test_repeated_outages_open_the_breaker_which_shows_in_status(api_owner_a, tenant_a, point_at, settings):
    settings.INTEGRATION_RETRY_ATTEMPTS = 1
    settings.INTEGRATION_BREAKER_FAIL_MAX = 2
    server = point_at("openai")
    server.expect_request("/v1/models").respond_with_data("down", status=503)
    _set(api_owner_a, "openai", {"OPENAI_API_KEY": "sk-abcdefghijkl"})
    codes = [_verify(api_owner_a, "openai")["error_code"] for _ in range(3)]
    assert codes == ["INTEGRATION_UNREACHABLE"] * 3
    assert len(server.log) == 2  # the third call was refused by the open breaker
    assert [e.status for e in _usage(tenant_a, "openai")] == ["error", "error", "circuit_open"]
    row = {r["provider"]: r for r in api_owner_a.get("/api/integrations/status").json()["providers"]}["openai"]
    assert row["circuit_breaker"] == "open"


@pytest.mark.django_db
def test_usage_filters_by_provider_and_bot(api_owner_a, tenant_a, point_at):
    server = point_at("openai")
    server.expect_request("/v1/models").respond_with_json({"data": []})
    _set(api_owner_a, "openai", {"OPENAI_API_KEY": "sk-abcdefghijkl"})
    with tenancy.tenant_context(tenant_a.id):
        services.verify_provider(provider="openai", actor_name="test", bot_id=77)
    _verify(api_owner_a, "openai")
    events = api_owner_a.get("/api/integrations/usage?provider=openai&bot_id=77").json()["events"]
    assert [(e["bot_id"], e["operation"]) for e in events] == [(77, "verify")]
    assert len(api_owner_a.get("/api/integrations/usage?limit=1").json()["events"]) == 1
    assert api_owner_a.get("/api/integrations/usage?provider=nope").status_code == 400


@pytest.mark.django_db
def test_verify_needs_a_provider_or_all(api_operator_a, api_viewer_a):
    response = api_operator_a.post("/api/integrations/verify", {}, format="json")
    assert response.status_code == 400 and "provider" in response.json()["details"]
    assert api_viewer_a.post("/api/integrations/verify", {"provider": "redis"}, format="json").status_code == 403
    body = api_operator_a.post("/api/integrations/verify", {"all": True}, format="json").json()
    assert [r["provider"] for r in body["results"]] == ["redis"]


@pytest.mark.django_db
def test_scheduled_reverify_task_verifies_configured_providers(tenant_a):
    from integrations.tasks import reverify_tenant

    assert reverify_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get() == {"redis": "ok"}
    with tenancy.tenant_context(tenant_a.id):
        assert IntegrationVerification.objects.get().provider == "redis"
