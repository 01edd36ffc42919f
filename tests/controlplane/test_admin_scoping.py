"""The admin is an observatory scoped by the same RLS as the API: staff see only their tenants' rows."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from controlplane import tenancy
from controlplane.models import Membership
from controlplane.services import audit_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_of_a(tenant_a):
    user = UserFactory(username="staff-a", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_auditevent", "view_membership", "view_tenant"])
    )
    with tenancy.tenant_context(tenant_a.id):
        Membership.objects.create(tenant=tenant_a, user=user, role=Membership.Role.OPERATOR)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def events(tenant_a, tenant_b):
    with tenancy.tenant_context(tenant_a.id):
        audit_record(action="visible.to.a", resource_type="bot", resource_id=1, actor_name="test")
    with tenancy.tenant_context(tenant_b.id):
        audit_record(action="secret.of.b", resource_type="bot", resource_id=2, actor_name="test")


def test_staff_see_only_their_tenants_audit_events(staff_of_a, events):
    page = staff_of_a.get("/admin/controlplane/auditevent/").content.decode()
    assert "visible.to.a" in page
    assert "secret.of.b" not in page


def test_staff_see_only_their_tenants(staff_of_a, tenant_b):
    page = staff_of_a.get("/admin/controlplane/tenant/").content.decode()
    assert "tenant-a" in page and "tenant-b" not in page


def test_staff_cannot_switch_to_a_tenant_they_do_not_belong_to(staff_of_a, tenant_b, events):
    staff_of_a.post("/admin/switch-tenant/", {"tenant_id": tenant_b.id, "next": "/admin/"})
    page = staff_of_a.get("/admin/controlplane/auditevent/").content.decode()
    assert "secret.of.b" not in page


def test_superusers_switch_tenants_and_see_each_in_turn(tenant_a, tenant_b, events):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    client.post("/admin/switch-tenant/", {"tenant_id": tenant_b.id, "next": "/admin/"})
    page = client.get("/admin/controlplane/auditevent/").content.decode()
    assert "secret.of.b" in page and "visible.to.a" not in page
    assert 'id="tenant-switcher"' in page


def test_the_audit_log_is_read_only_in_admin(staff_of_a, events):
    assert staff_of_a.get("/admin/controlplane/auditevent/add/").status_code == 403
