from django.db import connection, transaction

from controlplane import tenancy


def _current_tenant_in_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_tenant_id()")
        return cursor.fetchone()[0]


def test_tenant_setting_lives_exactly_as_long_as_its_transaction(committed_db):
    with tenancy.tenant_context(41):
        with transaction.atomic():
            assert _current_tenant_in_database() == 41
    # The same pooled connection, outside any context: nothing was left behind on the session.
    assert _current_tenant_in_database() is None
    with transaction.atomic():
        assert _current_tenant_in_database() is None


def test_nested_contexts_restore_the_outer_tenant_inside_one_transaction(committed_db):
    with transaction.atomic():
        with tenancy.tenant_context(1):
            with tenancy.tenant_context(2):
                assert _current_tenant_in_database() == 2
            assert _current_tenant_in_database() == 1
        assert _current_tenant_in_database() is None


def test_a_statement_outside_atomic_still_runs_as_the_tenant_in_context(committed_db):
    """An ORM update() in autocommit would otherwise run with no tenant and silently match nothing."""
    from controlplane.models import Membership, Tenant
    from tests.factories import UserFactory

    tenant = Tenant.objects.create(slug="autocommit", name="Autocommit")
    user = UserFactory(username="autocommit-user")
    with tenancy.tenant_context(tenant.id):
        membership = Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.VIEWER)
        assert Membership.objects.filter(pk=membership.pk).update(role=Membership.Role.OWNER) == 1
        assert _current_tenant_in_database() == tenant.id
    with tenancy.tenant_context(tenant.id), transaction.atomic():
        assert Membership.objects.get(pk=membership.pk).role == Membership.Role.OWNER
