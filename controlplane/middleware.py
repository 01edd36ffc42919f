"""The request's transaction and tenant (settings.MIDDLEWARE): apart from ``tenancy``, which the models import,
because choosing an admin page's tenant reads memberships (``controlplane.selectors``)."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.urls import Resolver404, resolve

from controlplane.errors import DATABASE_UNAVAILABLE_ERRORS, database_unavailable_response
from controlplane.selectors import admin_tenant_for
from controlplane.tenancy import activate, deactivate

logger = logging.getLogger(__name__)
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
        answered = False
        try:
            with transaction.atomic():
                user = getattr(request, "user", None)
                if user is not None and user.is_authenticated and request.path.startswith("/admin/"):
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
