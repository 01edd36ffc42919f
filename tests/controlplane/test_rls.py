"""Tenant isolation in Postgres itself, checked with raw SQL as the runtime role."""

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from controlplane import tenancy
from controlplane.dbroles import runtime_role_problems
from controlplane.models import Membership
from controlplane.services import audit_record

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def _set_tenant(tenant_id, user_id=None):
    with connection.cursor() as cursor:
        cursor.execute(
            tenancy.SET_CONTEXT_SQL,
            ["" if tenant_id is None else str(tenant_id), "" if user_id is None else str(user_id)],
        )


def _scalar(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@pytest.fixture
def two_tenants(owner_a, owner_b, tenant_a, tenant_b):
    with tenancy.tenant_context(tenant_a.id):
        audit_record(action="test.a", resource_type="thing", resource_id=1, actor_name="test")
    with tenancy.tenant_context(tenant_b.id):
        audit_record(action="test.b", resource_type="thing", resource_id=2, actor_name="test")
    return tenant_a, tenant_b


def test_runtime_role_cannot_bypass_rls_and_owner_is_flagged():
    assert runtime_role_problems("default") == []
    assert any("owns" in problem for problem in runtime_role_problems("owner"))


def test_with_tenant_a_set_raw_sql_cannot_read_tenant_b(two_tenants):
    tenant_a, tenant_b = two_tenants
    _set_tenant(tenant_a.id)
    assert _scalar("SELECT count(*) FROM controlplane_membership WHERE tenant_id = %s", [tenant_b.id]) == 0
    assert _scalar("SELECT count(*) FROM controlplane_auditevent WHERE tenant_id = %s", [tenant_b.id]) == 0
    assert _scalar("SELECT count(*) FROM controlplane_membership WHERE tenant_id = %s", [tenant_a.id]) == 1
    assert _scalar("SELECT count(*) FROM controlplane_auditevent WHERE action = 'test.a'") == 1


def test_with_tenant_a_set_raw_sql_cannot_update_tenant_b(two_tenants, owner_b):
    tenant_a, tenant_b = two_tenants
    _set_tenant(tenant_a.id)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE controlplane_membership SET role = 'viewer' WHERE tenant_id = %s", [tenant_b.id])
        assert cursor.rowcount == 0
        cursor.execute("DELETE FROM controlplane_membership WHERE tenant_id = %s", [tenant_b.id])
        assert cursor.rowcount == 0
    with tenancy.tenant_context(tenant_b.id):
        assert Membership.objects.get(user=owner_b).role == Membership.Role.OWNER


def test_with_tenant_a_set_raw_sql_cannot_insert_into_tenant_b(two_tenants, owner_a):
    tenant_a, tenant_b = two_tenants
    _set_tenant(tenant_a.id)
    with pytest.raises(ProgrammingError, match="row-level security"):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO controlplane_auditevent (tenant_id, actor, action, resource_type, resource_id, "
                    "trace_id, created_at) VALUES (%s, 'x', 'forged', 't', '1', 'trace-forged', now())",
                    [tenant_b.id],
                )


def test_with_no_tenant_set_no_tenant_rows_are_visible(two_tenants):
    _set_tenant(None)
    assert _scalar("SELECT count(*) FROM controlplane_membership") == 0
    assert _scalar("SELECT count(*) FROM controlplane_auditevent WHERE tenant_id IS NOT NULL") == 0


def test_orm_scoping_is_the_second_lock(two_tenants):
    tenant_a, tenant_b = two_tenants
    assert Membership.objects.count() == 0  # no tenant in context: nothing, before the database is even asked
    with tenancy.tenant_context(tenant_a.id):
        assert set(Membership.objects.values_list("tenant_id", flat=True)) == {tenant_a.id}


def test_every_tenant_owned_table_has_a_forced_policy():
    tenant_tables = {
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.managed
        and any(getattr(field, "column", None) == "tenant_id" for field in model._meta.concrete_fields)
    }
    assert "controlplane_membership" in tenant_tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relrowsecurity AND c.relforcerowsecurity "
            "AND EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = 'public')"
        )
        protected = {row[0] for row in cursor.fetchall()}
    assert tenant_tables - protected == set(), "tenant-owned tables without a forced RLS policy"


def test_every_view_with_a_tenant_column_reads_its_tables_as_the_caller():
    """A view runs as its owner unless it is ``security_invoker``, and the owner bypasses row-level security: a
    tenant view (``basis_pnl``) without it would show every tenant's rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, coalesce(c.reloptions, '{}') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE n.nspname = 'public' AND c.relkind = 'v' AND a.attname = 'tenant_id'"
        )
        views = dict(cursor.fetchall())
    assert "basis_pnl" in views
    assert {name for name, options in views.items() if "security_invoker=true" not in options} == set()
