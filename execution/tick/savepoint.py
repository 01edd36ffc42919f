"""A savepoint taken only when a block runs a statement: the tick's per-instrument isolation at no cost to an
instrument that runs none (``execution.tick.batches``)."""

from __future__ import annotations

from django.db import DatabaseError, Error, transaction


class SavepointOnFirstStatement:
    """A savepoint taken just before the block's first statement, released at its end or rolled back to if it raises:
    ``transaction.atomic()`` for a block that usually runs none. An instrument's steady state (no fills, no order)
    decides in Python alone, and a SAVEPOINT and a RELEASE for each of a task's instruments were most of its round
    trips; a block that ran no statement has nothing to undo. Every statement through Django's cursors counts (a
    nested ``atomic()``'s own SAVEPOINT included), so whatever the block comes to run, its first statement finds the
    savepoint taken."""

    def __init__(self, using: str = "default"):
        self.connection = transaction.get_connection(using)
        self.sid: str | None = None
        self._taking = False

    def __call__(self, execute, sql, params, many, context):
        if self.sid is None and not self._taking:
            self._taking = True  # the SAVEPOINT statement itself passes through this wrapper
            self.sid = self.connection.savepoint()
        return execute(sql, params, many, context)

    def __enter__(self) -> SavepointOnFirstStatement:
        if not self.connection.in_atomic_block:
            raise transaction.TransactionManagementError("SavepointOnFirstStatement runs inside atomic() only")
        self._needed_rollback = self.connection.needs_rollback
        self.connection.execute_wrappers.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        connection = self.connection
        connection.execute_wrappers.remove(self)
        if self.sid is None:  # no statement ran: the database is as the block found it
            connection.needs_rollback = self._needed_rollback
            return
        if exc_type is None and not connection.needs_rollback:
            try:
                connection.savepoint_commit(self.sid)
                return
            except DatabaseError:
                self._roll_back()
                raise
        connection.needs_rollback = False  # as atomic() does: back to the savepoint, the transaction goes on
        self._roll_back()

    def _roll_back(self) -> None:
        try:
            self.connection.savepoint_rollback(self.sid)
            self.connection.savepoint_commit(self.sid)
        except Error:  # the transaction cannot go on: atomic() around it rolls it back
            self.connection.needs_rollback = True
