"""Backups bring back every tenant's rows: forced RLS binds the owner, so they run as the BYPASSRLS backup role."""

import subprocess
import threading

import psycopg
from django.core.management import call_command
from django.db import connections

from controlplane import backups, tenancy
from controlplane.models import Membership
from controlplane.services import audit_record
from tests.factories import TenantFactory, UserFactory
from tests.processes import wait_for

TENANT_TABLES_SQL = (
    "SELECT c.table_name FROM information_schema.columns c JOIN pg_tables t "
    "ON t.tablename = c.table_name AND t.schemaname = c.table_schema "
    "WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' ORDER BY 1"
)


def _rows_per_tenant(conninfo: str) -> dict[tuple[str, int], int]:
    """(table, tenant) -> rows, read as the backup role (which RLS does not bind)."""
    counts = {}
    with psycopg.connect(conninfo) as conn:
        for (table,) in conn.execute(TENANT_TABLES_SQL).fetchall():
            for tenant_id, n in conn.execute(f'SELECT tenant_id, count(*) FROM "{table}" GROUP BY 1').fetchall():
                counts[(table, tenant_id)] = n
    return counts


def _conninfo(settings_dict, *, user, dbname=None):
    return psycopg.conninfo.make_conninfo(
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=user,
        dbname=dbname or settings_dict["NAME"],
    )


def _drop_database(settings_dict, name, *, waiting=None, deadline_s=30.0):
    """Drop ``name`` as the owner once no other role's session is left on it.

    A closed libpq connection's backend exits after the client has moved on, and ``WITH (FORCE)`` may only end the
    owner's own sessions: a runtime or backup session still exiting made the drop fail with InsufficientPrivilege
    (a clean-clone CI run, 2026-12-07). ``waiting`` is called once the drop has to wait, for the test of this wait.
    """
    with psycopg.connect(
        _conninfo(settings_dict, user=settings_dict["USER"], dbname="postgres"), autocommit=True
    ) as admin:
        called = []

        def no_other_session():
            others = admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND usename <> current_user", [name]
            ).fetchall()
            if others and waiting is not None and not called:
                called.append(True)
                waiting()
            return not others

        wait_for(no_other_session, timeout=deadline_s, interval=0.02, what=f"other roles' sessions on {name} to end")
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_dropping_a_database_waits_for_other_roles_sessions_to_end(committed_db):
    """The owner may not end the runtime role's session, so the drop waits for it to end instead of failing."""
    owner = connections["owner"].settings_dict
    scratch = f"{owner['NAME']}_drop_wait"
    _drop_database(owner, scratch)
    with psycopg.connect(_conninfo(owner, user=owner["USER"], dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}" OWNER "{owner["USER"]}"')
    runtime_user = connections["default"].settings_dict["USER"]
    app = psycopg.connect(_conninfo(owner, user=runtime_user, dbname=scratch))
    waiting = threading.Event()
    failure = []

    def drop():
        try:
            _drop_database(owner, scratch, waiting=waiting.set)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread's assertion
            failure.append(exc)
            waiting.set()

    dropper = threading.Thread(target=drop)
    dropper.start()
    try:
        assert waiting.wait(30)
        assert failure == []
    finally:
        app.close()
        dropper.join(60)
    assert not dropper.is_alive() and failure == []
    with psycopg.connect(_conninfo(owner, user=owner["USER"], dbname="postgres")) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch]).fetchone() == (0,)


def test_backup_as_the_backup_role_restores_every_tenants_rows_into_a_fresh_database(committed_db, tmp_path):
    assert backups.server_major() == 15 and backups.client_major("pg_dump") == 15
    tenants = [TenantFactory(slug="backup-a"), TenantFactory(slug="backup-b")]
    for i, tenant in enumerate(tenants):
        with tenancy.tenant_context(tenant.id):
            Membership.objects.create(tenant=tenant, user=UserFactory(username=f"backup-user-{i}"), role="owner")
            audit_record(action="backup.test", resource_type="tenant", resource_id=tenant.id, actor_name="test")
    owner = connections["owner"].settings_dict
    source = _rows_per_tenant(_conninfo(owner, user="cp_backup"))
    for tenant in tenants:
        assert source[("controlplane_membership", tenant.id)] == 1
        assert source[("controlplane_auditevent", tenant.id)] >= 1

    # What the backup role is for: the owner's own dump stops at the first table with a forced policy.
    as_owner = subprocess.run(
        [
            "/usr/bin/pg_dump",
            "--format=custom",
            "--file",
            str(tmp_path / "owner.dump"),
            _conninfo(owner, user=owner["USER"]),
        ],
        capture_output=True,
        text=True,
    )
    assert as_owner.returncode != 0 and "row-level security" in as_owner.stderr

    dump = tmp_path / "cp.dump"
    call_command("backup", "--out", str(dump))
    fresh = f"{owner['NAME']}_restored"
    _drop_database(owner, fresh)
    with psycopg.connect(_conninfo(owner, user=owner["USER"], dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh}" OWNER "{owner["USER"]}"')
    try:
        backups.restore(dump, {**owner, "NAME": fresh})
        assert _rows_per_tenant(_conninfo(owner, user="cp_backup", dbname=fresh)) == source
        # The runtime role's grants, the policies and the forced RLS came back with the rows.
        runtime_user = connections["default"].settings_dict["USER"]
        with psycopg.connect(_conninfo(owner, user=runtime_user, dbname=fresh)) as app:
            assert app.execute("SELECT count(*) FROM controlplane_membership").fetchone()[0] == 0
            for tenant in tenants:
                app.execute("SELECT set_config('app.tenant_id', %s, false)", [str(tenant.id)])
                rows = app.execute("SELECT DISTINCT tenant_id FROM controlplane_membership").fetchall()
                assert rows == [(tenant.id,)]
            triggers = app.execute(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'execution_%_oms_only' ORDER BY 1"
            ).fetchall()
            assert triggers == [("execution_fill_oms_only",), ("execution_order_oms_only",)]
            assert app.execute(
                "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'controlplane_membership'"
            ).fetchone() == (True,)
    finally:
        _drop_database(owner, fresh)
