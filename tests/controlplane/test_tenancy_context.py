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
        # Same context, same pooled connection, but outside the transaction: nothing carried over.
        assert _current_tenant_in_database() is None
        with transaction.atomic():
            assert _current_tenant_in_database() == 41


def test_nested_contexts_restore_the_outer_tenant_inside_one_transaction(committed_db):
    with transaction.atomic():
        with tenancy.tenant_context(1):
            with tenancy.tenant_context(2):
                assert _current_tenant_in_database() == 2
            assert _current_tenant_in_database() == 1
        assert _current_tenant_in_database() is None
