"""A request's tenant comes from the user's membership; roles decide what it may do."""

import pytest
from rest_framework.test import APIClient

from controlplane import tenancy
from controlplane.models import Membership
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_single_membership_needs_no_header(api_viewer_a):
    body = api_viewer_a.get("/api/me").json()
    assert (body["tenant"], body["role"]) == ("tenant-a", "viewer")


def test_several_memberships_default_to_the_first_and_x_tenant_picks_another(owner_a, tenant_b):
    with tenancy.tenant_context(tenant_b.id):
        Membership.objects.create(tenant=tenant_b, user=owner_a, role=Membership.Role.VIEWER)
    client = client_for(owner_a)
    assert client.get("/api/me").json()["tenant"] == "tenant-a"
    assert client.get("/api/me", HTTP_X_TENANT="tenant-b").json()["role"] == "viewer"
    assert client.get("/api/me", HTTP_X_TENANT=str(tenant_b.id)).json()["tenant"] == "tenant-b"


def test_a_tenant_the_user_does_not_belong_to_is_404(api_owner_a, tenant_b):
    for header in ("tenant-b", str(tenant_b.id), "no-such-tenant"):
        response = api_owner_a.get("/api/me", HTTP_X_TENANT=header)
        assert response.status_code == 404
        assert response.json()["error_code"] == "TENANT_NOT_FOUND"


def test_a_user_with_no_membership_is_refused():
    response = client_for(UserFactory(username="loner")).get("/api/me")
    assert response.status_code == 403
    assert response.json()["error_code"] == "NO_TENANT_MEMBERSHIP"


def test_members_list_shows_only_the_current_tenant(api_viewer_a, owner_a, owner_b):
    usernames = {row["username"] for row in api_viewer_a.get("/api/tenant/members").json()["results"]}
    assert usernames == {"viewer-a", "owner-a"}


def test_audit_log_is_tenant_scoped(api_owner_a, api_owner_b):
    api_owner_b.post("/api/tenant/invitations", {"username": "joiner", "role": "viewer"}, format="json")
    assert api_owner_a.get("/api/audit-events?action=invitation.create").json()["results"] == []
    rows = api_owner_b.get("/api/audit-events?action=invitation.create").json()["results"]
    assert [row["tenant"] for row in rows] == ["tenant-b"]


def test_session_login_works_for_the_api(owner_a):
    client = APIClient()
    client.force_login(owner_a)
    assert client.get("/api/me").json()["tenant"] == "tenant-a"
