"""The database roles: the owner that migrates, the runtime role that RLS binds, and the read-only backup role.

Postgres lets superusers, BYPASSRLS roles and (without FORCE) table owners past row-level security, so the
runtime role (DATABASE_URL) must be none of these. ``runtime_role_problems`` is what the system check and the
process start-up guard ask; ``provision`` creates both roles and the database on a server where we are superuser
(the embedded stack, CI).

The backup role (``cp_backup``) is the one role with ``BYPASSRLS``: forced RLS binds the owner too, so ``pg_dump``
as the owner fails (or, with ``--enable-row-security``, dumps no tenant rows). It is read-only
(``pg_read_all_data``), owns nothing, and only ``manage.py backup`` uses it; never point DATABASE_URL at it.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

DML_GRANTS = "SELECT, INSERT, UPDATE, DELETE"


def runtime_role_problems(alias: str = "default") -> list[str]:
    """Ways the runtime connection could read past RLS; empty when it cannot."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        rolname, is_super, bypass = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = current_user"
        )
        owned_tables = cursor.fetchone()[0]
    problems = []
    if is_super:
        problems.append(f"database role {rolname!r} is a superuser")
    if bypass:
        problems.append(f"database role {rolname!r} has BYPASSRLS")
    if owned_tables:
        problems.append(f"database role {rolname!r} owns {owned_tables} tables (run migrations as DATABASE_OWNER_URL)")
    return problems


def _refusal(problems: list[str]) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        "Refusing to start: the runtime database connection could bypass row-level security: "
        + "; ".join(problems)
        + ". Point DATABASE_URL at a NOSUPERUSER NOBYPASSRLS role that does not own the tables."
    )


def assert_runtime_role_cannot_bypass_rls() -> None:
    problems = runtime_role_problems()
    if problems:
        raise _refusal(problems)


def _check_on_first_connection(sender, connection, **kwargs) -> None:
    """Until the runtime role has been checked once, every new default connection is checked before it is used;
    one that could bypass RLS is closed and refused, so no query ever runs on it."""
    if connection.alias != "default":
        return
    problems = runtime_role_problems(connection.alias)
    if problems:
        connection.close()
        raise _refusal(problems)
    connection_created.disconnect(_check_on_first_connection, dispatch_uid=__name__)
    logger.info("runtime database role checked on the first connection: it cannot bypass row-level security")


def guard_runtime_role_at_start() -> None:
    """The start-up guard of the web app, workers and beat. A role that could bypass RLS stops the start. With the
    database unreachable the process starts anyway and the check moves to the first connection that works: a
    process started during an outage must ride it out (health says 503, beat waits), not exit and burn its
    supervisor's restarts; and until the check has passed, no connection is handed out unchecked."""
    try:
        assert_runtime_role_cannot_bypass_rls()
    except OperationalError as exc:
        connections["default"].close()
        logger.warning("database unreachable at start (%s): the runtime role is checked on the first connection", exc)
        connection_created.connect(_check_on_first_connection, dispatch_uid=__name__, weak=False)


def grant_runtime_privileges(owner_alias: str = "owner", runtime_alias: str = "default") -> None:
    """Give the runtime role DML (and nothing more) on everything the owner has created; run after migrate."""
    owner_user = connections[owner_alias].settings_dict["USER"]
    runtime_user = connections[runtime_alias].settings_dict["USER"]
    if not runtime_user or runtime_user == owner_user:
        return
    with connections[owner_alias].cursor() as cursor:
        quoted = connections[owner_alias].ops.quote_name(runtime_user)
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
        cursor.execute(f"GRANT {DML_GRANTS} ON ALL TABLES IN SCHEMA public TO {quoted}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {DML_GRANTS} ON TABLES TO {quoted}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}")
        # The audit log is append-only; its trigger refuses changes too, this keeps the grant honest.
        cursor.execute(f"REVOKE UPDATE, DELETE ON controlplane_auditevent FROM {quoted}")


BACKUP_ROLE = "cp_backup"


def provision_sql(*, owner: str, runtime: str, backup: str = BACKUP_ROLE) -> list[str]:
    """Idempotent role creation, run as a superuser."""
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN
                CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{runtime}') THEN
                CREATE ROLE {runtime} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{backup}') THEN
                CREATE ROLE {backup} LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        END $$""",
        f"ALTER ROLE {runtime} NOSUPERUSER NOBYPASSRLS",
        f"ALTER ROLE {backup} NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE",
        # Read-only: SELECT on every table and sequence, USAGE on every schema (Postgres 14+), nothing more.
        f"GRANT pg_read_all_data TO {backup}",
    ]


def provision(superuser_dsn: str, *, database: str, owner: str, runtime: str, backup: str = BACKUP_ROLE) -> None:
    """Create the roles and the database (owned by ``owner``) if missing. Uses psycopg directly: no Django yet."""
    import psycopg

    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        for statement in provision_sql(owner=owner, runtime=runtime, backup=backup):
            conn.execute(statement)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}" OWNER {owner}')
        # A test database is created by the owner role; the runtime role needs to connect to those too.
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {runtime}')
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {backup}')
