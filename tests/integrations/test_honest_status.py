"""The status rows say only what was measured: a failed call is not a use, and a breaker nobody can read is
``unknown``, not closed (regressions of issue 11)."""

import pytest
from werkzeug import Response

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def _rows(client):
    return {r["provider"]: r for r in client.get("/api/integrations/status").json()["providers"]}


@pytest.mark.django_db
def test_a_failed_verify_is_counted_as_a_failure_not_as_a_use(api_owner_a, point_at):
    server = point_at("openai")
    server.expect_request("/v1/models").respond_with_response(Response('{"error": {}}', 401))
    assert (
        api_owner_a.post(
            "/api/integrations/credentials",
            {"provider": "openai", "values": {"OPENAI_API_KEY": "sk-bad-1234567890"}},
            format="json",
        ).status_code
        == 201
    )
    assert (
        api_owner_a.post("/api/integrations/verify", {"provider": "openai"}, format="json").json()["status"] == "failed"
    )
    row = _rows(api_owner_a)["openai"]
    assert row["proof_of_use_count_24h"] == 0 and row["failed_use_count_24h"] == 1
    assert row["last_used_at"] is None and row["last_failed_at"] is not None
    assert row["connected"] is False and row["error_code"] == "INTEGRATION_AUTH_FAILED"


@pytest.mark.django_db
def test_with_redis_unreachable_redis_is_not_connected_and_every_breaker_is_unknown(api_operator_a, settings):
    assert (
        api_operator_a.post("/api/integrations/verify", {"provider": "redis"}, format="json").json()["status"] == "ok"
    )
    assert _rows(api_operator_a)["redis"]["connected"] is True
    settings.REDIS_URL = CLOSED_REDIS
    rows = _rows(api_operator_a)
    assert {row["circuit_breaker"] for row in rows.values()} == {"unknown"}
    assert rows["redis"]["connected"] is False and rows["redis"]["error_code"] == "INTEGRATION_UNREACHABLE"
    problems = [
        b for b in api_operator_a.get("/api/system/status").json()["blockers"] if b["component"] == "integrations.redis"
    ]
    assert problems and "cannot be reached now" in problems[0]["message"]


@pytest.mark.django_db
def test_a_breaker_opened_in_redis_reads_open(api_operator_a, tenant_a):
    import redis as redis_client
    from django.conf import settings

    from integrations.providers.base import breaker_for

    with redis_client.Redis.from_url(settings.REDIS_URL) as connection:
        breaker = breaker_for("openai", tenant_a.id)
        breaker.open()
        try:
            assert _rows(api_operator_a)["openai"]["circuit_breaker"] == "open"
        finally:
            breaker.close()
            connection.delete(*connection.keys(f"cp:integrations:breaker:{tenant_a.id}:openai*"))
