"""Django's PostgreSQL backend, plus the tenant context written at the start of every transaction.

Row-level security reads ``app.tenant_id``, which lives only as long as its transaction. Two paths get it there:
leaving autocommit (``transaction.atomic()``) writes it before the first statement, and a statement run in
autocommit while a tenant is in context is wrapped in a transaction of its own that does the same. Without the
second, an ORM ``update()`` outside ``atomic()`` would run with no tenant and silently match no rows.
"""

from django.db import transaction
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from controlplane import tenancy


class _TenantAutocommitMixin:
    def _in_tenant_transaction(self):
        if self.db.get_autocommit() and tenancy.current_tenant_id() is not None:
            return transaction.atomic(using=self.db.alias)
        return None

    def execute(self, sql, params=None):
        scope = self._in_tenant_transaction()
        if scope is None:
            return super().execute(sql, params)
        with scope:
            return super().execute(sql, params)

    def executemany(self, sql, param_list):
        scope = self._in_tenant_transaction()
        if scope is None:
            return super().executemany(sql, param_list)
        with scope:
            return super().executemany(sql, param_list)


class TenantCursorWrapper(_TenantAutocommitMixin, CursorWrapper):
    pass


class TenantCursorDebugWrapper(_TenantAutocommitMixin, CursorDebugWrapper):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    def _set_autocommit(self, autocommit):
        super()._set_autocommit(autocommit)
        if not autocommit:
            # Leaving autocommit is how Django opens a transaction (atomic()); the next statement begins it.
            tenancy.apply_to_connection(self)

    def make_cursor(self, cursor):
        return TenantCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return TenantCursorDebugWrapper(cursor, self)
