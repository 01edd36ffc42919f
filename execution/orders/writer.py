"""The OMS's write guard: the only way a transaction may write orders and fills (DESIGN.md invariant 1).

Every write to ``Order`` and ``Fill`` happens inside :func:`oms_writes`, which declares the transaction the OMS's
by calling ``app_oms_write_begin()``, a SECURITY DEFINER function that records the transaction id in a table the
runtime role cannot read or write; a database trigger refuses the write otherwise (``set_config('app.writer', ...)``
is no longer trusted: the runtime role could set it itself).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from django.db import connection, transaction

from controlplane import tenancy
from controlplane.db.one_trip import in_one_round_trip

ACTOR = "oms"
MARK = "app_oms_write_begin()"


_writing = contextvars.ContextVar("oms_writing", default=False)


@contextlib.contextmanager
def oms_writes(*, savepoint: bool = True, marked_by_first_statement: bool = False) -> Iterator[None]:
    """A transaction (or savepoint) in which the trigger lets orders and fills be written; reset on the way out so
    an enclosing transaction is not left marked as the OMS. Nested inside another one it only adds the savepoint:
    the outer block already marked the transaction and will reset it.

    ``savepoint=False``: inside an enclosing transaction, no savepoint of its own (two statements fewer, which a
    sim bar's booking pays twice); an error inside then undoes the enclosing block up to its own savepoint or
    transaction, as ``atomic(savepoint=False)`` does: for callers that let errors propagate.

    A block that opens the transaction writes the mark in the statement that writes the tenant context at its BEGIN
    (``controlplane.tenancy.calls_at_begin``), not in a round trip of its own (the OMS's record of the venues'
    answers is such a block, on the path of every intent's "sent" time), unless ``marked_by_first_statement`` (the
    OMS's claim, below). Either way it does not call ``app_oms_write_end()``: nothing runs in its transaction after
    it, and a deferred constraint trigger on the mark's table (execution migration 0022) deletes the mark at COMMIT,
    without a round trip before every OMS commit. A block nested in another transaction marks it with a statement of
    its own and calls ``app_oms_write_end()`` on its way out, so the enclosing transaction's later statements are not
    the OMS's.

    ``marked_by_first_statement``: a block that opens its transaction leaves the mark to its first statement, which
    calls :data:`MARK` itself when it finds work (the OMS's claim, once per claimed row): a claim that finds
    nothing then writes nothing, and its commit is a read-only one, without a WAL flush (a quarter of the OMS's
    runs at 100 intents a second claim nothing). Until that statement has run, the transaction is not the OMS's."""
    begins = not connection.in_atomic_block and not _writing.get()
    with contextlib.ExitStack() as block:
        if begins:  # this block opens the transaction: the mark goes in the statement its BEGIN runs anyway
            with tenancy.calls_at_begin(*(() if marked_by_first_statement else (MARK,))):
                block.enter_context(transaction.atomic(savepoint=savepoint))
        else:
            block.enter_context(transaction.atomic(savepoint=savepoint))
        if _writing.get():
            yield
            return
        token = _writing.set(True)
        try:
            if not begins:  # nested: the enclosing transaction is marked now, whatever the first statement does
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT {MARK}")
            yield
            if not begins:  # nested: the enclosing transaction goes on (an opened one's mark ends at COMMIT)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT app_oms_write_end()")
        finally:
            _writing.reset(token)


def oms_write(sql: str, params) -> list[tuple]:
    """One statement that writes orders or fills, returning rows. With no transaction open, it is a transaction of
    its own sent in one round trip (``controlplane.db.one_trip``: BEGIN, the tenant context with the mark, the
    statement, COMMIT; the mark deleted at COMMIT by the trigger), not four: the OMS's record of the venues' answers,
    on the path of every intent's "sent" time. Inside a transaction, in an :func:`oms_writes` block of it."""
    if not connection.in_atomic_block and not _writing.get():
        return in_one_round_trip(sql, params, calls=(MARK,))
    with oms_writes(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
