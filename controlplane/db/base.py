"""Django's PostgreSQL backend, plus the tenant context written at the start of every transaction.

Row-level security reads ``app.tenant_id``, which lives only as long as its transaction. Two paths get it there:
leaving autocommit (``transaction.atomic()``) writes it before the first statement, and a statement run in
autocommit while a tenant is in context is wrapped in a transaction of its own that does the same. Without the
second, an ORM ``update()`` outside ``atomic()`` would run with no tenant and silently match no rows.
"""

import psycopg
from django.db import transaction
from django.db.backends.postgresql import base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import ClientCursor, pq

from controlplane import tenancy


_IDLE = pq.TransactionStatus.IDLE


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
            # Leaving autocommit is how Django opens a transaction (atomic()): it begins here, with the context.
            self._begin_with_context()

    def _begin_with_context(self):
        """BEGIN and the tenant context (``tenancy.context_statement``) in one message, one round trip: psycopg sent
        its BEGIN on its own before the context's statement, a round trip more for every transaction (four of them
        on the OMS's path of every intent's "sent" time). The text goes straight to libpq (``PGconn.exec_``, the
        simple query protocol, which runs the two one after the other), so psycopg finds the transaction open, as
        after its own BEGIN, and sends none; the ids are bound on the client (digits, or empty). The psycopg path
        (:func:`tenancy.apply_to_connection`) stays for a transaction psycopg would begin otherwise (read-only or
        deferrable) or one already open."""
        raw = self.connection
        if raw.read_only is not None or raw.deferrable is not None or raw.info.transaction_status != _IDLE:
            tenancy.apply_to_connection(self)
            return
        begin = "BEGIN"
        if raw.isolation_level is not None:
            begin += " ISOLATION LEVEL " + raw.isolation_level.name.replace("_", " ")
        context = ClientCursor(raw).mogrify(*tenancy.context_statement())
        with self.wrap_database_errors:
            result = raw.pgconn.exec_(f"{begin}; {context}".encode(raw.info.encoding))
            if result.status != pq.ExecStatus.TUPLES_OK:
                if raw.pgconn.status == pq.ConnStatus.BAD:  # the connection is lost: what psycopg raises then
                    raise psycopg.OperationalError(result.error_message.decode(raw.info.encoding, "replace"))
                raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)

    def make_cursor(self, cursor):
        return TenantCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return TenantCursorDebugWrapper(cursor, self)
