"""Membership comes from an invitation the invited user accepts; owners list, revoke and remove; nothing tells an
owner which usernames exist; a user's default tenant keeps answering when they join another."""

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane import tenancy
from controlplane.models import AuditEvent, Invitation, Membership
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

VOLATILE = {"id", "invitee", "created_at", "expires_at"}


def _invite(client, **body):
    return client.post("/api/tenant/invitations", {"role": "viewer", **body}, format="json")


def _memberships(user) -> set[str]:
    with tenancy.tenant_context(None, user_id=user.id):
        return {m.tenant.slug for m in Membership.unscoped.filter(user=user).select_related("tenant")}


@pytest.fixture
def api_owner_b(owner_b):
    return client_for(owner_b)


def test_the_issue_request_no_longer_adds_another_tenants_owner(api_owner_b, owner_a):
    response = api_owner_b.post("/api/tenant/members", {"username": "owner-a", "role": "viewer"}, format="json")
    assert response.status_code == 405
    assert response.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert _memberships(owner_a) == {"tenant-a"}
    assert client_for(owner_a).get("/api/me").json()["tenant"] == "tenant-a"


def test_an_invitation_makes_nobody_a_member_until_the_invited_user_accepts(api_owner_b, owner_a):
    response = _invite(api_owner_b, username="owner-a")
    assert response.status_code == 202, response.json()
    assert _memberships(owner_a) == {"tenant-a"}

    alice = client_for(owner_a)
    [pending] = alice.get("/api/invitations").json()["results"]
    assert (pending["tenant"], pending["role"], pending["invited_by"]) == ("tenant-b", "viewer", "owner-b")
    accepted = alice.post(f"/api/invitations/{pending['id']}/accept")
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["status"] == "ACCEPTED"
    assert _memberships(owner_a) == {"tenant-a", "tenant-b"}
    assert alice.get("/api/invitations").json()["results"] == []
    assert alice.post(f"/api/invitations/{pending['id']}/accept").json()["error_code"] == "ILLEGAL_TRANSITION"


def test_the_default_tenant_keeps_answering_after_joining_another(api_owner_b, owner_a):
    alice = client_for(owner_a)
    invitation_id = _invite(api_owner_b, username="owner-a").json()["id"]
    alice.post(f"/api/invitations/{invitation_id}/accept")
    me = alice.get("/api/me").json()
    assert (me["tenant"], me["role"]) == ("tenant-a", "owner")
    assert [m["tenant"] for m in me["memberships"]] == ["tenant-a", "tenant-b"]
    assert alice.post("/api/tenant/kill", {"reason": "drill"}, format="json").status_code == 200
    assert alice.get("/api/me", HTTP_X_TENANT="tenant-b").json()["role"] == "viewer"


def test_unknown_and_existing_invitees_get_the_same_answer(api_owner_a, owner_b):
    answers = [
        _invite(api_owner_a, username="owner-b"),
        _invite(api_owner_a, username="nobody-at-all"),
        _invite(api_owner_a, email="owner-b@example.com"),
        _invite(api_owner_a, email="ghost@example.com"),
    ]
    assert {response.status_code for response in answers} == {202}
    bodies = [{k: v for k, v in response.json().items() if k not in VOLATILE} for response in answers]
    assert all(body == bodies[0] for body in bodies), bodies
    assert set(answers[0].json()) == set(answers[1].json())
    listed = api_owner_a.get("/api/tenant/invitations").json()["results"]
    assert {row["invitee"] for row in listed} == {
        "owner-b",
        "nobody-at-all",
        "owner-b@example.com",
        "ghost@example.com",
    }
    assert len({tuple(sorted((k, str(v)) for k, v in row.items() if k not in VOLATILE)) for row in listed}) == 1


def test_an_email_invitation_reaches_the_user_with_that_email(api_owner_a, owner_b):
    _invite(api_owner_a, email="OWNER-B@example.com", role="operator")
    [pending] = client_for(owner_b).get("/api/invitations").json()["results"]
    assert (pending["tenant"], pending["role"]) == ("tenant-a", "operator")


def test_nobody_else_sees_or_answers_an_invitation(api_owner_b, owner_a, viewer_a, operator_a):
    invitation_id = _invite(api_owner_b, username="owner-a").json()["id"]
    for user in (viewer_a, operator_a):
        client = client_for(user)
        assert client.get("/api/invitations").json()["results"] == []
        response = client.post(f"/api/invitations/{invitation_id}/accept")
        assert (response.status_code, response.json()["error_code"]) == (404, "NOT_FOUND")
    assert client_for(owner_a).get("/api/tenant/invitations").json()["results"] == []


def test_a_user_with_no_tenant_yet_can_accept(api_owner_a):
    newcomer = UserFactory(username="newcomer")
    invitation_id = _invite(api_owner_a, username="newcomer", role="operator").json()["id"]
    client = client_for(newcomer)
    assert client.get("/api/me").json()["error_code"] == "NO_TENANT_MEMBERSHIP"
    assert client.post(f"/api/invitations/{invitation_id}/accept").status_code == 200
    assert client.get("/api/me").json()["role"] == "operator"
    with tenancy.tenant_context(Invitation.unscoped.get(id=invitation_id).tenant_id):
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"invitation.create", "invitation.accepted", "membership.create"} <= actions


def test_declined_revoked_and_expired_invitations_cannot_be_accepted(api_owner_a, owner_b):
    bob = client_for(owner_b)
    declined, revoked, expired = (_invite(api_owner_a, username="owner-b").json()["id"] for _ in range(3))
    assert bob.post(f"/api/invitations/{declined}/decline").json()["status"] == "DECLINED"
    assert api_owner_a.post(f"/api/tenant/invitations/{revoked}/revoke").json()["status"] == "REVOKED"
    with tenancy.tenant_context(Invitation.unscoped.get(id=expired).tenant_id):
        Invitation.objects.filter(id=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    for invitation_id in (declined, revoked, expired):
        response = bob.post(f"/api/invitations/{invitation_id}/accept")
        assert (response.status_code, response.json()["error_code"]) == (409, "ILLEGAL_TRANSITION")
    assert _memberships(owner_b) == {"tenant-b"}


@pytest.mark.parametrize(
    "client_fixture,status",
    [("api_viewer_a", 403), ("api_operator_a", 403), ("api_owner_a", 202), ("api_owner_b", 202)],
)
def test_only_owners_invite_and_list_invitations(request, client_fixture, status):
    client = request.getfixturevalue(client_fixture)
    assert _invite(client, username="someone").status_code == status
    assert client.get("/api/tenant/invitations").status_code == (200 if status == 202 else 403)


def test_an_owner_cannot_revoke_another_tenants_invitation(api_owner_a, api_owner_b):
    invitation_id = _invite(api_owner_b, username="someone").json()["id"]
    assert api_owner_a.post(f"/api/tenant/invitations/{invitation_id}/revoke").status_code == 404


def _member_id(client, username: str) -> int:
    return next(row["id"] for row in client.get("/api/tenant/members").json()["results"] if row["username"] == username)


def test_an_owner_removes_a_member_and_it_is_audited(api_owner_a, viewer_a):
    response = api_owner_a.delete(f"/api/tenant/members/{_member_id(api_owner_a, 'viewer-a')}")
    assert response.status_code == 204
    assert _memberships(viewer_a) == set()
    [event] = api_owner_a.get("/api/audit-events?action=membership.remove").json()["results"]
    assert (event["actor"], event["before_state"]) == ("owner-a", {"user": "viewer-a", "role": "viewer"})


@pytest.mark.parametrize("client_fixture", ["api_viewer_a", "api_operator_a"])
def test_only_owners_remove_members(request, client_fixture, owner_a):
    client = request.getfixturevalue(client_fixture)
    response = client.delete(f"/api/tenant/members/{_member_id(client, 'owner-a')}")
    assert response.status_code == 403
    assert _memberships(owner_a) == {"tenant-a"}


def test_the_last_owner_cannot_be_removed(api_owner_a, owner_a):
    response = api_owner_a.delete(f"/api/tenant/members/{_member_id(api_owner_a, 'owner-a')}")
    assert (response.status_code, response.json()["error_code"]) == (409, "CONFLICT")
    assert _memberships(owner_a) == {"tenant-a"}


def test_an_owner_cannot_remove_another_tenants_member(api_owner_a, api_owner_b, owner_b):
    response = api_owner_a.delete(f"/api/tenant/members/{_member_id(api_owner_b, 'owner-b')}")
    assert response.status_code == 404
    assert _memberships(owner_b) == {"tenant-b"}


def test_the_database_hides_invitations_from_other_tenants_and_other_users(api_owner_b, owner_a, viewer_a, tenant_a):
    _invite(api_owner_b, username="owner-a")
    with tenancy.tenant_context(tenant_a.id, user_id=viewer_a.id):
        assert not Invitation.unscoped.exists()  # RLS itself, not the ORM's tenant filter
    with tenancy.tenant_context(None, user_id=owner_a.id):
        assert Invitation.unscoped.get().invited_user_id == owner_a.id
