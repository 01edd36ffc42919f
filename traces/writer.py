"""Bulk trace writer: COPY into a session temp table, then one INSERT ... SELECT under RLS.

Postgres refuses ``COPY FROM`` into a table with row-level security, and ``bulk_create`` runs at a tenth of COPY's
rate, so rows are copied into an unprotected temp table and moved with a single INSERT whose rows the tenant
policy still checks. ``ON CONFLICT DO NOTHING`` makes a re-run of the same tick write nothing; a caller that has
already left out the rows that exist (``fresh``: the tick) gets a plain INSERT, which falls back to that on a
unique violation. (The day's partitions force RLS too, so COPY straight into one is refused as well.)

A write whose rows all share their bar, context, run, timeframe and trace id (the tick's: one bar of one run) stages
nothing: the shared columns go to the move once, as parameters, and the columns that vary as one array parameter
each, which the move unnests. Its JSON columns go the same way: each distinct text once, in one JSON array the move
takes as a parameter, and each row its element's number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import orjson
from django.db import IntegrityError, connections, transaction
from psycopg.errors import UniqueViolation

from controlplane.tenancy import require_tenant_id
from controlplane.trace import current_trace_id
from traces.summaries import resummarize_late_traces

COLUMNS = (
    "kind",
    "context",
    "run_ref",
    "bot_id",
    "instrument",
    "timeframe",
    "bar_ts",
    "reason_code",
    "details",
    "inputs",
    "signal",
    "risk_checks",
    "intent_id",
    "trace_id",
)
# The columns every row of a tick's write shares (one bar of one run, one trace id), with their types: such a write
# copies the others only and the move takes these once. At a thousand rows a tick, formatting and parsing a timestamp
# and four strings per row was half of COPY's client time and a seventh of its server time.
SHARED = {
    "context": "varchar",
    "run_ref": "bigint",
    "timeframe": "varchar",
    "bar_ts": "timestamptz",
    "trace_id": "varchar",
}
# A shared write's JSON columns, with its kind, symbol and reason code: each row carries its number (from 1) in the
# write's pool of distinct (details, inputs, signal, risk checks, kind, instrument, reason code), which the move takes
# as one parameter (``%(pool)s``, a JSON array of seven-element arrays) and joins back. A tick's thousand rows hold a
# few dozen distinct ones (a strategy's signal on one bar, with a bar's inputs for a position, a no-signal reason,
# empty risk checks; the inputs are the instrument's already): parsing every row's jsonb was half of COPY's server
# time, and parsing a thousand-element text array per text column most of the rows' unnest. One join of the pool's
# columns together cost less than a join for each column (0.8 against 1.0 ms a thousand rows, EXPLAIN ANALYZE; the
# texts' parsing 2.5).
JSON_COLUMNS = ("details", "inputs", "signal", "risk_checks")
POOLED_TEXTS = ("kind", "instrument", "reason_code")
PER_ROW = ("bot_id", "json_ref", "intent_id")  # the columns neither shared nor pooled, and the number
_STAGE = "_ticktrace_stage"
# The stage of the writes whose rows do not share their bar and run (backtests, scanners); a shared write stages
# nothing (``_ROWS``).
_CREATE_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (
    kind varchar(16) NOT NULL, context varchar(16), run_ref bigint, bot_id bigint,
    instrument varchar(64) NOT NULL, timeframe varchar(8), bar_ts timestamptz,
    reason_code varchar(32), details jsonb, inputs jsonb, signal jsonb, risk_checks jsonb,
    intent_id bigint, trace_id varchar(64), json_ref int
) ON COMMIT DELETE ROWS
"""


def _selected(shared: bool) -> str:
    """The move's select list: the staged columns, or for a shared write the shared ones as parameters and the JSON
    ones from the pool."""
    if not shared:
        return ", ".join(COLUMNS)
    return ", ".join(
        f"%({column})s::{SHARED[column]}"
        if column in SHARED
        else f"p.{column}"
        if column in JSON_COLUMNS or column in POOLED_TEXTS
        else f"s.{column}"
        for column in COLUMNS
    )


# Each element's values taken out once, before the join (MATERIALIZED: inlined, the extractions would be pulled up
# past it and run for every row, seven a row where a tick's pool has a few dozen elements).
_POOL = (
    "pool AS MATERIALIZED (SELECT n, "
    + ", ".join(f"v -> {k} AS {column}" for k, column in enumerate(JSON_COLUMNS))
    + ", "
    + ", ".join(f"v ->> {len(JSON_COLUMNS) + k} AS {column}" for k, column in enumerate(POOLED_TEXTS))
    + " FROM jsonb_array_elements(%(pool)s::jsonb) WITH ORDINALITY AS e(v, n))"
)
# A shared write's rows: ``PER_ROW``'s columns, one array parameter each (``_arrays``), unnested together. COPY into
# the stage, its scan and the DELETE that empties it cost more, client and server, than building and parsing these
# arrays, and were a round trip of their own.
_ROWS = (
    "s AS (SELECT * FROM unnest(%(bot_ids)s::bigint[], %(json_refs)s::int[], %(intent_ids)s::bigint[])"
    " AS u(bot_id, json_ref, intent_id))"
)
# A shared write's FROM: each row with its element of the pool. An outer join, so that a row whose number the pool
# lacks fails the write (the trace's JSON columns are NOT NULL) instead of vanishing.
_SHARED_SOURCE = "s LEFT JOIN pool p ON p.n = s.json_ref"


# Moves and empties the stage in one statement, so several writes in one transaction never see each other's rows.
_MOVE = {
    False: f"""
WITH staged AS (DELETE FROM {_STAGE} RETURNING *)
INSERT INTO traces_ticktrace (tenant_id, created_at, {", ".join(COLUMNS)})
SELECT %(tenant)s, now(), {_selected(False)} FROM staged
ON CONFLICT ON CONSTRAINT ticktrace_one_per_bot_instrument_bar DO NOTHING
""",
    True: f"""
WITH {_POOL}, {_ROWS}
INSERT INTO traces_ticktrace (tenant_id, created_at, {", ".join(COLUMNS)})
SELECT %(tenant)s, now(), {_selected(True)} FROM {_SHARED_SOURCE}
ON CONFLICT ON CONSTRAINT ticktrace_one_per_bot_instrument_bar DO NOTHING
""",
}
# Rows the caller knows to be new are moved by a plain INSERT: ON CONFLICT's speculative insertion (a probe of the
# unique index, then the insert, then a second check) was a third of the move's time. The INSERT runs in a
# savepoint sent with it (one round trip, four statements: the driver binds parameters client-side), so that a
# concurrent run that traced some of the same bots first costs a rollback to it and the ON CONFLICT move, never the
# transaction. The stage is emptied by a plain DELETE after the INSERT (the CTE's RETURNING of every row cost more).
_FRESH_SAVEPOINT = "trace_move"
_MOVE_FRESH = {
    False: f"""SAVEPOINT {_FRESH_SAVEPOINT};
INSERT INTO traces_ticktrace (tenant_id, created_at, {", ".join(COLUMNS)})
SELECT %(tenant)s, now(), {_selected(False)} FROM {_STAGE};
DELETE FROM {_STAGE};
RELEASE SAVEPOINT {_FRESH_SAVEPOINT}""",
    True: f"""SAVEPOINT {_FRESH_SAVEPOINT};
WITH {_POOL}, {_ROWS} INSERT INTO traces_ticktrace (tenant_id, created_at, {", ".join(COLUMNS)})
SELECT %(tenant)s, now(), {_selected(True)} FROM {_SHARED_SOURCE};
RELEASE SAVEPOINT {_FRESH_SAVEPOINT}""",
}
_UNDO_FRESH = f"ROLLBACK TO SAVEPOINT {_FRESH_SAVEPOINT}; RELEASE SAVEPOINT {_FRESH_SAVEPOINT}"


@dataclass(slots=True)
class TraceRow:
    """One trace to write. Read-only by convention, not ``frozen``: the tick builds one per bot per tick, and a
    frozen dataclass's generated ``__init__`` (each field through ``object.__setattr__``) cost four times a plain
    one's."""

    kind: str
    bot_id: int | None
    instrument: str
    timeframe: str
    bar_ts: datetime
    context: str = "tick"
    run_ref: int | None = None
    reason_code: str | None = None
    details: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)
    signal: dict = field(default_factory=dict)
    risk_checks: list = field(default_factory=list)
    intent_id: int | None = None
    trace_id: str = ""


def _json(value) -> str:
    """orjson for the tick's four JSON columns a row: a fifteenth of the stdlib's time on a trace's inputs, numpy
    scalars as numbers, and NaN as null (Postgres' jsonb refuses NaN, which would fail the whole batch's COPY)."""
    if not value and type(value) in _EMPTY:  # most rows' risk checks, a steady tick's every one
        return _EMPTY[type(value)]
    return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


_EMPTY = {dict: "{}", list: "[]"}


def _copy_values(row: TraceRow, default_trace_id: str) -> tuple:
    return (
        row.kind,
        row.context,
        row.run_ref,
        row.bot_id,
        row.instrument,
        row.timeframe,
        row.bar_ts,
        row.reason_code,
        _json(row.details),
        _json(row.inputs),
        _json(row.signal),
        _json(row.risk_checks),
        row.intent_id,
        row.trace_id or default_trace_id,
    )


def _arrays(rows: Sequence[TraceRow]) -> dict[str, str]:
    """A shared write's ``PER_ROW`` columns as array literals, one parameter each (``_ROWS``), and its pool: each
    row's number in it ((details, inputs, signal, risk checks) texts, kind, instrument, reason code -> number, from 1,
    in the order first seen). Rows often share their inputs (the tick's bots on one bar holding the same position
    share one dict, and the tick's bots deciding alike share all four objects: ``execution.tick.batches``): each is
    serialized once a write, kept by the objects' ids (the rows keep every object alive until the write ends)."""
    inputs_texts: dict[int, str] = {}
    pool: dict[tuple, int] = {}
    by_ids: dict[tuple, int] = {}  # the four objects' ids and the three texts -> their number in the pool
    bot_ids, refs, intent_ids = [], [], []
    for row in rows:
        ids = (
            id(row.details),
            id(row.inputs),
            id(row.signal),
            id(row.risk_checks),
            row.kind,
            row.instrument,
            row.reason_code,
        )
        ref = by_ids.get(ids)
        if ref is None:
            inputs = inputs_texts.get(id(row.inputs))
            if inputs is None:
                inputs = inputs_texts[id(row.inputs)] = _json(row.inputs)
            texts = (_json(row.details), inputs, _json(row.signal), _json(row.risk_checks), *ids[4:])
            ref = pool.get(texts)
            if ref is None:
                ref = pool[texts] = len(pool) + 1
            by_ids[ids] = ref
        refs.append(ref)
        bot_ids.append("NULL" if row.bot_id is None else str(row.bot_id))
        intent_ids.append("NULL" if row.intent_id is None else str(row.intent_id))
    return {
        "bot_ids": _literal(bot_ids),
        "json_refs": _literal(map(str, refs)),
        "intent_ids": _literal(intent_ids),
        "pool": _pool_json(pool),
    }


def _literal(elements: Iterable[str]) -> str:
    return "{" + ",".join(elements) + "}"


def _pool_json(pool: dict[tuple, int]) -> str:
    """The pool as the move's parameter: its n-th element is number n (a dict keeps the order of insertion)."""
    return (
        "["
        + ",".join(
            f"[{details},{inputs},{signal},{risk_checks},{_text(kind)},{_text(instrument)},{_text(reason)}]"
            for details, inputs, signal, risk_checks, kind, instrument, reason in pool
        )
        + "]"
    )


def _text(value: str | None) -> str:
    return "null" if value is None else orjson.dumps(str(value)).decode()


def _shared_values(rows: Sequence[TraceRow], default_trace_id: str) -> dict | None:
    """The ``SHARED`` columns' values if every row has the same ones, else None."""
    if not rows:
        return None
    first = rows[0]
    key = (first.context, first.run_ref, first.timeframe, first.bar_ts, first.trace_id)
    for row in rows:
        if (row.context, row.run_ref, row.timeframe, row.bar_ts, row.trace_id) != key:
            return None
    return {
        "context": first.context,
        "run_ref": first.run_ref,
        "timeframe": first.timeframe,
        "bar_ts": first.bar_ts,
        "trace_id": first.trace_id or default_trace_id,
    }


def create_session_stage(sender, connection, **kwargs) -> None:
    """Give every new database session its stage table, in autocommit: created once and outside any transaction,
    it lives as long as the session, so no write pays for a CREATE and no rolled-back transaction takes it away."""
    if connection.vendor == "postgresql":
        connection.connection.execute(_CREATE_STAGE)


def write_traces(rows: Sequence[TraceRow] | Iterable[TraceRow], *, using: str = "default", fresh: bool = False) -> int:
    """Persist trace rows for the tenant in context; returns how many were new (re-runs return 0).

    ``fresh``: the caller has left out the rows that already exist (the tick's batch read says which bots are
    traced on this bar), so they are inserted without ON CONFLICT; should another run have written some of them
    since, the write falls back to skipping those, as without ``fresh``."""
    tenant_id = require_tenant_id()
    default_trace_id = current_trace_id()
    connection = connections[using]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    past_days: dict[date, set[int]] = {}  # live ticks of a day already over: its summary may need redoing
    rows = rows if isinstance(rows, Sequence) else list(rows)
    shared = _shared_values(rows, default_trace_id)
    params = {"tenant": tenant_id, **(shared or {})}
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        if shared is None:
            with cursor.cursor.copy(f"COPY {_STAGE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_copy_values(row, default_trace_id))
        else:
            params.update(_arrays(rows))
        if shared is None or (shared["bar_ts"] < today and shared["context"] == "tick"):
            for row in rows:
                if row.bar_ts < today and row.context == "tick" and row.bot_id is not None:
                    past_days.setdefault(row.bar_ts.astimezone(UTC).date(), set()).add(row.bot_id)
        written = _move_fresh(cursor, params, shared is not None) if fresh else None
        if written is None:
            cursor.execute(_MOVE[shared is not None], params)
            written = cursor.rowcount
        if past_days and written:
            resummarize_late_traces(past_days)
        return written


def _move_fresh(cursor, params: dict, shared: bool) -> int | None:
    """The staged rows by a plain INSERT: how many, or None if some already existed (nothing was moved)."""
    try:
        cursor.execute(_MOVE_FRESH[shared], params)
    except IntegrityError as exc:
        if not isinstance(exc.__cause__, UniqueViolation):
            raise
        cursor.execute(_UNDO_FRESH)
        return None
    cursor.nextset()  # the SAVEPOINT's result first, then the INSERT's
    return cursor.rowcount
