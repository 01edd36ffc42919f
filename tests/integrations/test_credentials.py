"""Operator-entered keys: owners only, encrypted at rest, never returned, audited without the value."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from controlplane import tenancy
from controlplane.models import AuditEvent
from integrations import credentials, crypto
from integrations.models import IntegrationCredential
from integrations.registry import get_provider
from tests.conftest import present_second_factor

SECRET = "sk-test-abcdefghijklmnop1234"


def _set_openai(client, value=SECRET):
    return client.post(
        "/api/integrations/credentials", {"provider": "openai", "values": {"OPENAI_API_KEY": value}}, format="json"
    )


@pytest.mark.django_db
def test_owner_sets_a_key_that_is_encrypted_and_never_returned(api_owner_a, tenant_a, owner_a):
    response = _set_openai(api_owner_a)
    assert response.status_code == 201, response.json()
    assert SECRET not in response.content.decode()
    assert response.json()["set"][0]["last4"] == "1234"
    with tenancy.tenant_context(tenant_a.id):
        row = IntegrationCredential.objects.get(provider="openai")
        assert SECRET not in row.ciphertext and crypto.decrypt(row.ciphertext) == SECRET
        audit = AuditEvent.objects.get(action="integration.credential.set")
    assert SECRET not in str(audit.before_state) + str(audit.after_state)
    assert audit.resource_id == "openai.OPENAI_API_KEY" and audit.actor == owner_a.username
    for url in ("/api/integrations/keys-needed", "/api/integrations/status", "/api/audit-events"):
        assert SECRET not in api_owner_a.get(url).content.decode()
    keys = {k["name"]: k for g in api_owner_a.get("/api/integrations/keys-needed").json()["groups"] for k in g["keys"]}
    assert keys["OPENAI_API_KEY"]["is_set"] and keys["OPENAI_API_KEY"]["source"] == "admin"
    assert keys["OPENAI_API_KEY"]["set_by"] == owner_a.username and keys["OPENAI_API_KEY"]["last4"] == "1234"


@pytest.mark.django_db
def test_operator_and_viewer_may_not_set_or_clear_keys(api_operator_a, api_viewer_a):
    for client in (api_operator_a, api_viewer_a):
        response = _set_openai(client)
        assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
        assert client.delete("/api/integrations/credentials/openai/OPENAI_API_KEY").status_code == 403


@pytest.mark.django_db
def test_keys_are_per_tenant(api_owner_a, api_owner_b):
    _set_openai(api_owner_a)
    rows_b = {r["provider"]: r for r in api_owner_b.get("/api/integrations/status").json()["providers"]}
    assert rows_b["openai"]["configured"] is False
    assert rows_b["openai"]["missing_env_vars"] == ["OPENAI_API_KEY"]


@pytest.mark.django_db
def test_validation_names_the_field_and_writes_nothing(api_owner_a, tenant_a):
    present_second_factor(api_owner_a)  # a broker key: entering it needs a fresh second factor
    response = api_owner_a.post(
        "/api/integrations/credentials",
        {
            "provider": "tradovate",
            "values": {"TRADOVATE_USERNAME": "alice", "TRADOVATE_ENVIRONMENT": "production", "TRADOVATE_NOPE": "x"},
        },
        format="json",
    )
    assert response.status_code == 400
    details = response.json()["details"]
    assert set(details) == {"TRADOVATE_ENVIRONMENT", "TRADOVATE_NOPE"}
    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()


@pytest.mark.django_db
def test_redis_is_not_a_tenant_key(api_owner_a):
    response = api_owner_a.post(
        "/api/integrations/credentials", {"provider": "redis", "values": {"REDIS_URL": "redis://x"}}, format="json"
    )
    assert response.status_code == 400 and "provider" in response.json()["details"]


@pytest.mark.django_db
def test_owner_clears_a_key_and_the_clear_is_audited(api_owner_a, tenant_a):
    _set_openai(api_owner_a)
    assert api_owner_a.delete("/api/integrations/credentials/openai/OPENAI_API_KEY").status_code == 204
    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()
        assert AuditEvent.objects.filter(action="integration.credential.clear").count() == 1
    assert api_owner_a.delete("/api/integrations/credentials/openai/OPENAI_API_KEY").status_code == 404


@pytest.mark.django_db
def test_admin_entry_wins_over_the_environment(api_owner_a, tenant_a, settings):
    settings.INTEGRATION_ENV_CREDENTIALS = {
        **settings.INTEGRATION_ENV_CREDENTIALS,
        "OPENAI_API_KEY": "env-key-000011112222",
    }
    spec = get_provider("openai")
    with tenancy.tenant_context(tenant_a.id):
        states = credentials.field_states(spec)
        assert credentials.source_of(states) == "environment"
        assert credentials.resolve(spec)["OPENAI_API_KEY"] == "env-key-000011112222"
    _set_openai(api_owner_a)
    with tenancy.tenant_context(tenant_a.id):
        assert credentials.source_of(credentials.field_states(spec)) == "admin"
        assert credentials.resolve(spec)["OPENAI_API_KEY"] == SECRET


def test_the_environment_fallback_holds_the_registrys_credentials_set_there_and_the_deployments_redis(
    monkeypatch, settings
):
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-000011112222")
    monkeypatch.setenv("TRADOVATE_ENVIRONMENT", "demo")
    monkeypatch.setenv("POLYGON_API_KEY", "   ")  # blank: not set
    monkeypatch.setenv("NOT_A_PROVIDER_SECRET", "x")  # not a registry credential: never read
    monkeypatch.delenv("REDIS_URL", raising=False)
    found = credentials.environment_credentials()
    assert (found["OPENAI_API_KEY"], found["TRADOVATE_ENVIRONMENT"]) == ("env-key-000011112222", "demo")
    assert found["REDIS_URL"] == settings.REDIS_URL
    assert "POLYGON_API_KEY" not in found and "NOT_A_PROVIDER_SECRET" not in found


def test_the_integrations_app_fills_the_settings_environment_fallback_at_start_up(monkeypatch, settings):
    """The settings module imports no app (import-linter), so the integrations app computes it when ready."""
    from django.apps import apps

    monkeypatch.setenv("OPENAI_API_KEY", "env-key-000011112222")
    del settings.INTEGRATION_ENV_CREDENTIALS
    apps.get_app_config("integrations").ready()
    assert settings.INTEGRATION_ENV_CREDENTIALS == credentials.environment_credentials()
    assert settings.INTEGRATION_ENV_CREDENTIALS["OPENAI_API_KEY"] == "env-key-000011112222"


@pytest.mark.django_db
def test_rotate_credentials_reencrypts_under_the_newest_key(api_owner_a, tenant_a, settings):
    old_key = settings.CREDENTIALS_ENCRYPTION_KEYS[0]
    _set_openai(api_owner_a)
    new_key = Fernet.generate_key().decode()
    settings.CREDENTIALS_ENCRYPTION_KEYS = [new_key, old_key]
    out = io.StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "Re-encrypted 1" in out.getvalue()
    settings.CREDENTIALS_ENCRYPTION_KEYS = [new_key]
    with tenancy.tenant_context(tenant_a.id):
        row = IntegrationCredential.objects.get()
        assert crypto.decrypt(row.ciphertext) == SECRET
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with tenancy.tenant_context(tenant_a.id), pytest.raises(crypto.CredentialDecryptionError):
        crypto.decrypt(IntegrationCredential.objects.get().ciphertext)


@pytest.mark.django_db
def test_a_broker_key_needs_a_fresh_second_factor_to_enter_or_clear(api_owner_a, tenant_a):
    values = {"IRONBEAM_USERNAME": "alice", "IRONBEAM_PASSWORD": "pw-123456789012", "IRONBEAM_API_KEY": "k" * 16}
    refused = api_owner_a.post(
        "/api/integrations/credentials", {"provider": "ironbeam", "values": values}, format="json"
    )
    assert (refused.status_code, refused.json()["error_code"]) == (403, "STEP_UP_REQUIRED")
    cleared = api_owner_a.delete("/api/integrations/credentials/ironbeam/IRONBEAM_USERNAME")
    assert (cleared.status_code, cleared.json()["error_code"]) == (403, "STEP_UP_REQUIRED")
    with tenancy.tenant_context(tenant_a.id):
        assert not IntegrationCredential.objects.exists()
    present_second_factor(api_owner_a)
    entered = api_owner_a.post(
        "/api/integrations/credentials", {"provider": "ironbeam", "values": values}, format="json"
    )
    assert entered.status_code == 201, entered.json()
    assert api_owner_a.delete("/api/integrations/credentials/ironbeam/IRONBEAM_USERNAME").status_code == 204
