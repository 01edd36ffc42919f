"""Whole-database backups that include every tenant's rows, and their restore.

Forced row-level security binds the owner role too: ``pg_dump`` as the owner stops with "query would be affected by
row-level security policy", and with ``--enable-row-security`` it dumps the tables with no tenant rows at all (no
tenant is set). So backups run as the backup role (``cp_backup``: ``BYPASSRLS``, read-only through
``pg_read_all_data``, see ``controlplane/dbroles.py``), with Debian's ``pg_dump`` in custom format.

A restore goes into an empty database owned by the owner role, run as the owner (``--no-owner``: everything ends up
owned by whoever restores). ``pg_dump`` puts triggers and ``ENABLE ROW LEVEL SECURITY`` in its post-data section,
so the rows load before RLS and the OMS/audit triggers exist; the grants to the runtime role come back with them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.db import connections

from controlplane.dbroles import BACKUP_ROLE


class BackupError(RuntimeError):
    pass


def _tool(name: str) -> str:
    path = shutil.which(name, path=os.environ.get("PG_BIN_DIR") or None) or shutil.which(name)
    if not path:
        raise BackupError(f"{name} not found: install postgresql-client matching the server (or set PG_BIN_DIR)")
    return path


def _libpq_env(settings_dict: dict, *, user: str | None = None) -> tuple[list[str], dict]:
    args = ["--dbname", settings_dict["NAME"]]
    env = dict(os.environ)
    if settings_dict.get("HOST"):
        args += ["--host", settings_dict["HOST"]]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    args += ["--username", user or settings_dict["USER"]]
    if settings_dict.get("PASSWORD") and user is None:
        env["PGPASSWORD"] = settings_dict["PASSWORD"]
    return args, env


def backup_connection(alias: str = "owner") -> tuple[list[str], dict]:
    """pg_dump connection arguments: DATABASE_BACKUP_URL's credentials when set, else the backup role on the
    database of ``alias`` (so under the test runner it is the test database)."""
    target = dict(connections[alias].settings_dict)
    backup_url = os.environ.get("DATABASE_BACKUP_URL")
    if backup_url:
        import environ

        parsed = environ.Env.db_url_config(backup_url)
        user, password = parsed.get("USER"), parsed.get("PASSWORD")
    else:
        user, password = getattr(settings, "DATABASE_BACKUP_USER", BACKUP_ROLE), None
    args, env = _libpq_env(target, user=user)
    if password:
        env["PGPASSWORD"] = password
    return args, env


def server_major(alias: str = "owner") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def client_major(tool: str) -> int:
    out = subprocess.run([_tool(tool), "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1].split(".")[0].split("(")[0])


def backup(out: Path, *, alias: str = "owner") -> Path:
    """Dump the whole database (custom format) as the backup role into ``out``."""
    pg_dump = _tool("pg_dump")
    if client_major("pg_dump") < server_major(alias):
        raise BackupError(f"pg_dump {client_major('pg_dump')} is older than the server ({server_major(alias)})")
    args, env = backup_connection(alias)
    out = Path(out)
    result = subprocess.run(
        [pg_dump, *args, "--format=custom", "--no-password", "--file", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        out.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    return out


def restore(dump: Path, settings_dict: dict) -> None:
    """Restore ``dump`` into the (empty) database of ``settings_dict``, connecting as its user (the owner)."""
    pg_restore = _tool("pg_restore")
    args, env = _libpq_env(settings_dict)
    result = subprocess.run(
        [pg_restore, *args, "--no-owner", "--exit-on-error", "--single-transaction", "--no-password", str(dump)],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
