"""API tokens are stored only as digests, shown once, listed without values and revoked by owner or tenant owner."""

import importlib
import io
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from controlplane import tenancy
from controlplane.models import ApiToken, AuditEvent, Membership
from tests.conftest import client_for, token_for

pytestmark = pytest.mark.django_db


def _with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _bootstrap(*args) -> list[str]:
    out = io.StringIO()
    call_command("bootstrap_tenant", "acme", "--user", "alice", *args, stdout=out)
    return out.getvalue().splitlines()


def test_bootstrap_shows_a_token_once_and_new_token_issues_another_while_the_old_one_keeps_working():
    first = _bootstrap()
    token = first[-1]
    assert _with(token).get("/api/me").status_code == 200
    stored = ApiToken.objects.get(user__username="alice")
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    assert not Token.objects.exists()  # nothing in DRF's plaintext table

    again = _bootstrap()
    assert token not in "\n".join(again) and "none issued" in again[-1]
    assert ApiToken.objects.filter(user__username="alice").count() == 1

    fresh = _bootstrap("--new-token")[-1]
    assert fresh != token and ApiToken.objects.filter(user__username="alice").count() == 2
    assert _with(fresh).get("/api/me").status_code == 200
    assert _with(token).get("/api/me").status_code == 200


def test_a_user_lists_their_tokens_without_values_and_revokes_one(tenant_a, owner_a, owner_b):
    kept, revoked = token_for(owner_a), token_for(owner_a)
    listed = _with(kept).get("/api/tokens").json()["results"]
    assert len(listed) == 2 and all(set(row) == {"id", "username", "name", "created", "expiry"} for row in listed)
    assert kept not in str(listed) and revoked not in str(listed)
    revoked_id = ApiToken.objects.get(digest=_digest(revoked)).id
    other_id = ApiToken.objects.get(user=owner_b, digest=_digest(token_for(owner_b))).id
    assert _with(kept).delete(f"/api/tokens/{other_id}").status_code == 404  # not theirs
    assert _with(kept).delete(f"/api/tokens/{revoked_id}").status_code == 204
    assert _with(revoked).get("/api/me").status_code == 401
    assert _with(kept).get("/api/me").status_code == 200
    with tenancy.tenant_context(tenant_a.id):
        assert AuditEvent.unscoped.filter(action="token.revoke", resource_id=str(revoked_id)).exists()


def test_a_tenant_owner_revokes_the_tokens_of_members_who_belong_to_no_other_tenant(
    tenant_b, owner_a, operator_a, viewer_a, owner_b
):
    operator_token, viewer_token = token_for(operator_a), token_for(viewer_a)
    with tenancy.tenant_context(tenant_b.id):  # the viewer also joined tenant B
        Membership.objects.create(tenant=tenant_b, user=viewer_a, role=Membership.Role.VIEWER)
    owner = client_for(owner_a)
    listed = owner.get("/api/tenant/tokens").json()["results"]
    assert {row["username"] for row in listed} == {"owner-a", "operator-a"}
    assert operator_token not in str(listed)
    operator_token_id = ApiToken.objects.get(digest=_digest(operator_token)).id
    viewer_token_id = ApiToken.objects.get(digest=_digest(viewer_token)).id
    assert _with(operator_token).get("/api/tenant/tokens").status_code == 403  # owners only
    assert _with(operator_token).delete(f"/api/tenant/tokens/{operator_token_id}").status_code == 403
    assert owner.delete(f"/api/tenant/tokens/{viewer_token_id}").status_code == 404  # another tenant has them too
    assert client_for(owner_b).delete(f"/api/tenant/tokens/{operator_token_id}").status_code == 404
    assert owner.delete(f"/api/tenant/tokens/{operator_token_id}").status_code == 204
    assert _with(operator_token).get("/api/me").status_code == 401
    assert _with(viewer_token).get("/api/me", HTTP_X_TENANT="tenant-a").status_code == 200


def test_the_migration_turns_plaintext_tokens_into_digests_that_still_authenticate(owner_a):
    legacy = Token.objects.create(user=owner_a).key
    migration = importlib.import_module("controlplane.migrations.0005_api_tokens")
    migration.plaintext_keys_to_digests(apps, SimpleNamespace(connection=connection))
    assert not Token.objects.exists()
    assert ApiToken.objects.get(user=owner_a).token_key == legacy[:15]
    assert _with(legacy).get("/api/me").status_code == 200


def test_a_token_that_is_not_utf8_is_refused_in_the_error_shape():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token \xff\xfe")
    response = client.get("/api/me")
    assert response.status_code == 401 and response.json()["error_code"]


def _digest(token: str) -> str:
    from knox.crypto import hash_token

    return hash_token(token)
