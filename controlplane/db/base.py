"""Django's PostgreSQL backend, plus the tenant context written at the start of every transaction."""

from django.db.backends.postgresql import base

from controlplane import tenancy


class DatabaseWrapper(base.DatabaseWrapper):
    def _set_autocommit(self, autocommit):
        super()._set_autocommit(autocommit)
        if not autocommit:
            # Leaving autocommit is how Django opens a transaction (atomic()); the next statement begins it.
            tenancy.apply_to_connection(self)
