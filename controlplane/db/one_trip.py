"""A transaction of one statement in one round trip to Postgres.

A transaction that Django opens costs four round trips before its statement's rows are back and it is committed:
BEGIN (psycopg sends it on its own), the tenant context (``controlplane.tenancy.apply_to_connection``), the statement,
COMMIT. On a loaded machine each costs milliseconds of scheduling, and the OMS has two such transactions on the path
of every intent's "sent" time (the send's lock of its intents, its record of the venues' answers). Here the four go
in one message: the parameters bound on the client (psycopg's ``ClientCursor``) and the text sent with the simple
query protocol, which runs statements one after the other as the server would have run them one message at a time.
The transaction is the same (same statements, same order, same context, same locks, same commit); an error in one
statement skips the rest, COMMIT included, and the transaction is rolled back here before the error is raised.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg import ClientCursor, pq

from controlplane import tenancy


def in_one_round_trip(sql: str, params: Sequence | dict, *, calls: Sequence[str] = ()) -> list[tuple]:
    """Run ``sql`` (one statement, ``%s`` or ``%(name)s`` placeholders) as a transaction of its own, with the tenant
    context and ``calls`` (constant SQL function calls, as :func:`controlplane.tenancy.calls_at_begin` takes) at its
    BEGIN, in one round trip; returns the statement's rows. Outside any transaction only: its COMMIT would end the
    caller's. Logged and wrapped (``connection.execute_wrapper``) as one query, the text Django would log."""
    if connection.in_atomic_block or not connection.get_autocommit():
        raise RuntimeError("in_one_round_trip runs a transaction of its own: not inside another one")
    connection.ensure_connection()
    raw = connection.connection
    client = ClientCursor(raw)
    context = client.mogrify(*tenancy.context_statement(calls))  # ids and constant calls: no placeholder left in it
    cursor = (CursorDebugWrapper if connection.queries_logged else CursorWrapper)(client, connection)
    try:
        cursor.execute(f"BEGIN; {context}; {sql}; COMMIT", params)
        client.nextset()  # BEGIN -> the context
        client.nextset()  # -> the statement
        return cursor.fetchall() if cursor.description else []
    except BaseException:
        if raw.info.transaction_status != pq.TransactionStatus.IDLE:
            raw.rollback()
        raise
    finally:
        client.close()
