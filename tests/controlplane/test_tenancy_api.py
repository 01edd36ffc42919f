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


def test_several_memberships_need_the_x_tenant_header(owner_a, tenant_b):
    with tenancy.tenant_context(tenant_b.id):
        Membership.objects.create(tenant=tenant_b, user=owner_a, role=Membership.Role.VIEWER)
    client = client_for(owner_a)
    response = client.get("/api/me")
    assert response.status_code == 400
    assert response.json()["error_code"] == "TENANT_REQUIRED"
    assert response.json()["details"] == {"tenants": ["tenant-a", "tenant-b"]}
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


@pytest.mark.parametrize("client_fixture,status", [
    ("api_viewer_a", 403), ("api_operator_a", 403), ("api_owner_a", 201),
])
def test_only_owners_manage_members(request, client_fixture, status):
    UserFactory(username="candidate")
    client = request.getfixturevalue(client_fixture)
    response = client.post("/api/tenant/members", {"username": "candidate", "role": "operator"}, format="json")
    assert response.status_code == status, response.json()


def test_adding_an_existing_member_is_a_conflict(api_owner_a, viewer_a):
    response = api_owner_a.post("/api/tenant/members", {"username": "viewer-a", "role": "owner"}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"


def test_adding_an_unknown_user_names_the_field(api_owner_a):
    response = api_owner_a.post("/api/tenant/members", {"username": "ghost", "role": "viewer"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()["details"]


def test_audit_log_is_tenant_scoped(api_owner_a, api_owner_b):
    UserFactory(username="joiner")
    api_owner_b.post("/api/tenant/members", {"username": "joiner", "role": "viewer"}, format="json")
    assert api_owner_a.get("/api/audit-events?action=membership.create").json()["results"] == []
    rows = api_owner_b.get("/api/audit-events?action=membership.create").json()["results"]
    assert [row["tenant"] for row in rows] == ["tenant-b"]


def test_session_login_works_for_the_api(owner_a):
    client = APIClient()
    client.force_login(owner_a)
    assert client.get("/api/me").json()["tenant"] == "tenant-a"
