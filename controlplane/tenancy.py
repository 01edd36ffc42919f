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

from django.db import connection, connections, transaction
from django.urls import Resolver404, resolve

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


def apply_to_connection(connection) -> None:
    """Write the context into the connection's current transaction (called by the backend at BEGIN).

    Runs on the driver's connection directly: Django's cursor would see autocommit still on (the backend calls
    this while leaving it) and open another transaction around it."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        connection.connection.execute(SET_CONTEXT_SQL, [_as_setting(_tenant_id.get()), _as_setting(_user_id.get())])


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


RETRYABLE_METHODS = frozenset({"GET", "HEAD"})


class TenantTransactionMiddleware:
    """Runs each request in one transaction so the tenant set for it holds for every query it makes.

    Admin pages take the tenant chosen in the admin switcher (session); API views set theirs after DRF has
    authenticated the request: the default permission class ``controlplane.permissions.TenantRolePermission``
    calls ``resolve_request_tenant`` (the ``X-Tenant`` header or the user's default membership), which activates
    the tenant for the rest of this transaction.

    When the database cannot serve the request the answer is the one 503 of
    ``controlplane.errors.database_unavailable_response``, never a 500. A read (GET, HEAD) that lost the pooled
    connection it started on (``pg_terminate_backend``, a Postgres restart) runs once more on a fresh one. The
    retry lives here and not in the database backend because the unit that can safely run again is the whole
    request's transaction: a statement re-run alone would run outside the transaction (and the tenant) it belonged
    to. Writes are never retried: the client cannot tell whether the first attempt committed.

    Views that answer about the database itself (health, status) set ``request_transaction = False`` and open
    their own transaction once they know the database answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _wants_request_transaction(request):
            return self.get_response(request)
        had_connection = connection.connection is not None
        response = self._respond_in_transaction(request)
        if getattr(response, "database_unavailable", False) and not connection.is_usable():
            connection.close()  # a lost connection never serves another request
            if had_connection and request.method in RETRYABLE_METHODS:
                logger.warning(
                    "database connection lost during a read; retrying once on a fresh connection",
                    extra={"path": request.path},
                )
                response = self._respond_in_transaction(request)
        return response

    def _respond_in_transaction(self, request):
        from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS, database_unavailable_response

        answered = False
        try:
            with transaction.atomic():
                user = getattr(request, "user", None)
                if user is not None and user.is_authenticated and request.path.startswith("/admin/"):
                    from controlplane.selectors import admin_tenant_for

                    tenant = admin_tenant_for(request)
                    activate(tenant_id=tenant.id if tenant else None, user_id=user.id)
                    request.tenant = tenant
                response = self.get_response(request)
                answered = True
                return response
        except DATABASE_UNAVAILABLE_ERRORS as exc:  # at BEGIN (nothing ran) or at COMMIT (its outcome is unknown)
            return database_unavailable_response(request, exc, outcome_unknown=answered)
        finally:
            deactivate()


def _wants_request_transaction(request) -> bool:
    try:
        match = resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
    except Resolver404:
        return True
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    return getattr(view_class, "request_transaction", True)


def admin_tenant_context(request) -> dict:
    """Template context for the admin header: the active tenant and the ones the user may switch to."""
    if (
        not request.path.startswith("/admin/")
        or not getattr(request, "user", None)
        or not request.user.is_authenticated
    ):
        return {}
    from controlplane.selectors import switchable_tenants_for

    return {"admin_tenant": getattr(request, "tenant", None), "admin_tenants": switchable_tenants_for(request.user)}
