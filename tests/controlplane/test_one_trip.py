"""A transaction of one statement in one round trip (``controlplane.db.one_trip``): the same transaction as Django's
four round trips (the tenant context at its BEGIN, the statement, COMMIT), rolled back on an error."""

import pytest
from django.db import DataError, connection, transaction

from bots.models import Bot
from controlplane import tenancy
from controlplane.db.one_trip import in_one_round_trip
from tests.factories import TenantFactory


def test_one_round_trip_runs_in_the_tenant_s_context_and_commits(django_db_setup, committed_db):
    tenant, other = TenantFactory(slug="one-trip"), TenantFactory(slug="one-trip-other")
    for owner in (tenant, other):
        with tenancy.tenant_context(owner.id):
            Bot.objects.create(tenant=owner, name="b", strategy="ma_crossover", parameters={}, timeframe="1m")
    with tenancy.tenant_context(tenant.id):
        rows = in_one_round_trip(
            "UPDATE bots_bot SET name = %(name)s RETURNING tenant_id, current_setting('app.tenant_id'), "
            "current_setting('app.probe')",
            {"name": "renamed"},
            calls=("set_config('app.probe', 'called at begin', true)",),
        )
        assert rows == [(tenant.id, str(tenant.id), "called at begin")]  # RLS: the tenant's row only
        assert connection.connection.info.transaction_status == 0  # committed: no transaction left open
    with tenancy.tenant_context(other.id):
        assert list(Bot.objects.values_list("name", flat=True)) == ["b"]
    with tenancy.tenant_context(tenant.id):
        assert list(Bot.objects.values_list("name", flat=True)) == ["renamed"]  # seen by another transaction


def test_one_round_trip_rolls_back_on_an_error_and_refuses_to_run_inside_a_transaction(django_db_setup, committed_db):
    tenant = TenantFactory(slug="one-trip-error")
    with tenancy.tenant_context(tenant.id):
        Bot.objects.create(tenant=tenant, name="kept", strategy="ma_crossover", parameters={}, timeframe="1m")
        with pytest.raises(DataError):
            in_one_round_trip("UPDATE bots_bot SET name = 'lost' WHERE 1 / %s = 1", [0])
        assert connection.connection.info.transaction_status == 0
        assert list(Bot.objects.values_list("name", flat=True)) == ["kept"]
        with pytest.raises(RuntimeError), transaction.atomic():
            in_one_round_trip("SELECT 1", [])
