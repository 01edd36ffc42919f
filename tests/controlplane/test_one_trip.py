"""A transaction of one statement in one round trip (``controlplane.db.one_trip``): the same transaction as Django's
four round trips (the tenant context at its BEGIN, the statement, COMMIT), rolled back on an error."""

import pytest
from django.db import DataError, connection, transaction
from psycopg import pq

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


def _round_trips(tmp_path, work) -> int:
    """Messages the client sent that the server answers before the client goes on (a simple query, or the Sync that
    ends an extended-protocol statement), read from libpq's protocol trace of the connection while ``work`` runs."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    trace = tmp_path / "libpq.trace"
    with open(trace, "w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            work()
        finally:
            pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines() if line.startswith("F")]
    return sum(1 for fields in sent if len(fields) > 2 and fields[2].split(" ")[0] in ("Query", "Sync"))


def test_a_transaction_begins_with_its_context_in_one_round_trip(django_db_setup, committed_db, tmp_path):
    """BEGIN and the tenant context go in one message (old code: psycopg's BEGIN on its own, then the context): a
    transaction of one statement is three round trips (the context, the statement, COMMIT), not four; and a
    transaction sent whole by ``in_one_round_trip`` is one."""
    tenant = TenantFactory(slug="one-trip-begin")

    def one_statement():
        with tenancy.tenant_context(tenant.id), transaction.atomic():
            assert Bot.objects.count() == 0

    def whole():
        with tenancy.tenant_context(tenant.id):
            assert in_one_round_trip("SELECT count(*) FROM bots_bot", []) == [(0,)]

    assert _round_trips(tmp_path, one_statement) == 3
    assert _round_trips(tmp_path, whole) == 1
