"""Tenant context: who the current tenant and user are, and how that reaches Postgres.

Two locks, as DESIGN.md asks. The database lock: our backend (controlplane/db) runs
``set_config('app.tenant_id', ..., true)`` at the start of every transaction from the context below, and every
tenant-owned table has an RLS policy over ``current_tenant_id()``. The ORM lock: the default manager of every
``controlplane.models.TenantOwnedModel`` filters by the same context and returns nothing when none is set.
Settings are transaction-local, never session-level, so a pooled connection or a Celery worker cannot carry one
tenant's context into another's work.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

from django.db import connections

logger = logging.getLogger(__name__)

_tenant_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("tenant_id", default=None)
_user_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("app_user_id", default=None)

SET_CONTEXT_SQL = "SELECT set_config('app.tenant_id', %s, true), set_config('app.user_id', %s, true)"


class TenantContextMissing(RuntimeError):
    """Tenant-owned data was written with no tenant in context: a programming error, never a user error."""


def current_tenant_id() -> int | None:
    return _tenant_id.get()


def current_user_id() -> int | None:
    return _user_id.get()


def require_tenant_id() -> int:
    tenant_id = _tenant_id.get()
    if tenant_id is None:
        raise TenantContextMissing("no tenant in context; wrap the work in tenant_context(tenant_id)")
    return tenant_id


def _as_setting(value: int | None) -> str:
    return "" if value is None else str(int(value))


_calls_at_begin: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("calls_at_begin", default=())


def apply_to_connection(connection) -> None:
    """Write the context into the connection's current transaction (called by the backend at BEGIN), with the
    calls :func:`calls_at_begin` asked for in the same statement.

    Runs on the driver's connection directly: Django's cursor would see autocommit still on (the backend calls
    this while leaving it) and open another transaction around it."""
    connection.ensure_connection()
    sql, params = context_statement()
    with connection.wrap_database_errors:
        connection.connection.execute(sql, params)


def context_statement(calls: tuple[str, ...] | list[str] | None = None) -> tuple[str, list[str]]:
    """The statement that writes the current context into a transaction, with ``calls`` (constant SQL function
    calls; None: those :func:`calls_at_begin` asked for) in it, and its parameters."""
    calls = _calls_at_begin.get() if calls is None else calls
    return SET_CONTEXT_SQL + "".join(f", {call}" for call in calls), [
        _as_setting(_tenant_id.get()),
        _as_setting(_user_id.get()),
    ]


@contextlib.contextmanager
def calls_at_begin(*calls: str) -> Iterator[None]:
    """Within the block, a transaction that begins also runs ``calls`` (SQL function calls, constant text such as
    ``"app_oms_write_begin()"``, never built from data) in the statement that writes the tenant context: for a
    caller that opens a transaction only to call a function first, one round trip instead of two (the OMS's write
    mark, ``execution.orders.writer``). Wrap only the opening of the transaction: a tenant switch inside it writes
    the context again, and would run them again."""
    token = _calls_at_begin.set(_calls_at_begin.get() + calls)
    try:
        yield
    finally:
        _calls_at_begin.reset(token)


def _apply_to_open_transactions() -> None:
    for open_connection in connections.all(initialized_only=True):
        if open_connection.in_atomic_block and open_connection.vendor == "postgresql":
            apply_to_connection(open_connection)


@contextlib.contextmanager
def tenant_context(tenant_id: int | None, *, user_id: int | None = None) -> Iterator[None]:
    """Run the block as ``tenant_id`` (and ``user_id``); restores the previous context on exit."""
    tenant_token = _tenant_id.set(None if tenant_id is None else int(tenant_id))
    user_token = _user_id.set(user_id if user_id is not None else _user_id.get())
    _apply_to_open_transactions()
    try:
        yield
    finally:
        _tenant_id.reset(tenant_token)
        _user_id.reset(user_token)
        _apply_to_open_transactions()


def activate(*, tenant_id: int | None, user_id: int | None) -> None:
    """Set the context for the rest of the current request (the middleware clears it afterwards)."""
    _tenant_id.set(tenant_id)
    _user_id.set(user_id)
    _apply_to_open_transactions()


def deactivate() -> None:
    _tenant_id.set(None)
    _user_id.set(None)
