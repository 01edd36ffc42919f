"""Writing many rows' fields in one statement, without Django's ``bulk_update`` (:func:`update_rows`) or
``bulk_create`` (:func:`insert_rows`).

``QuerySet.bulk_update`` builds one ``CASE WHEN id = ... THEN ...`` expression per row and field, resolved and
compiled in Python: about a millisecond of CPU per row for a handful of fields, which made it the costliest step of
booking a batch of fills and of the OMS's batch writes. :func:`update_rows` writes the same values with one
``UPDATE ... SET (...) = (SELECT ... FROM jsonb_to_record(%s -> t.id::text))``: the rows travel as one JSON
document keyed by primary key (one parameter, dumped by the C encoder; an array parameter per field was slower for
long JSON values, whose array literal Postgres parses again), each typed by the columns' own types when its row is
written.

Both locks hold, as for any statement of a tenant: row-level security applies to the UPDATE, and a tenant-owned
model's rows are matched only within the tenant in context, as its default manager would (none in context is an
error here: a write that silently matched nothing would be worse).
"""

from __future__ import annotations

import datetime
import decimal
import json
import operator
import uuid
from collections.abc import Sequence

from django.db import connection
from django.db.models import DateField, DateTimeField, Field, JSONField, Model, TimeField

from controlplane import tenancy
from controlplane.models import TenantOwnedModel


def _scalar(value):
    """A column value as JSON: what its column type reads back exactly (full microseconds, every decimal digit)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _converters(columns) -> list:
    """Per column, its value as a JSON-ready Python value: a JSON field's as the field's encoder writes it (as
    ``save()`` would; as is without an encoder), any other column's prepared value through :func:`_scalar`. The
    rows are then dumped in one ``json.dumps`` call (the C encoder), not one call per value.

    The values a column's type already holds skip ``get_prep_value`` (which returns them unchanged: a ``str`` in
    a text column (or a subclass: a choices member), an ``int`` in an integer or key column, a ``bool``, ``None``, an aware ``datetime``) or take
    the one conversion it would lead to (a ``Decimal``'s text); anything else goes through the field as before."""
    return [_converter(field) for field in columns]


_TEXT_TYPES = {
    "CharField",
    "TextField",
    "SlugField",
    "EmailField",
    "URLField",
    "FilePathField",
    "GenericIPAddressField",
}
_INTEGER_TYPES = {
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
}


def _converter(field):
    if isinstance(field, JSONField):
        return _identity if field.encoder is None else (lambda v: json.loads(json.dumps(v, cls=field.encoder)))
    slow = lambda v: _scalar(field.get_prep_value(v))  # noqa: E731 (a closure per column)
    kind = field.get_internal_type()
    if field.is_relation:
        kind = field.target_field.get_internal_type()
    if kind in _TEXT_TYPES:
        return lambda v: v if v is None or isinstance(v, str) else slow(v)  # a str subclass (choices) dumps as text
    if kind in _INTEGER_TYPES:
        return lambda v: v if v is None or type(v) is int else slow(v)
    if kind == "BooleanField":
        return lambda v: v if v is None or type(v) is bool else slow(v)
    if kind == "DecimalField":
        # An int (a field's ``default=0``) is what its exact Decimal reads as: str(Decimal(n)) == str(n).
        return lambda v: None if v is None else (str(v) if type(v) is decimal.Decimal or type(v) is int else slow(v))
    if kind == "DateTimeField":
        return lambda v: (
            None
            if v is None
            else (v.isoformat() if type(v) is datetime.datetime and v.utcoffset() is not None else slow(v))
        )
    return slow


def _identity(value):
    return value


def update_rows(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object in ``objs`` (one model, each row once) to its row in one statement; returns
    the number of rows updated. What ``bulk_update(objs, fields)`` writes; like it, ``auto_now`` fields are written
    only if named (their value as set on the object). A JSON field's value is encoded with the field's encoder,
    as ``save()`` would."""
    if not objs:
        return 0
    sql, params = update_rows_sql(objs, fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def update_rows_sql(objs: Sequence[Model], fields: Sequence[str]) -> tuple[str, list]:
    """The statement :func:`update_rows` runs and its parameters, for a caller that adds ``RETURNING t."id"`` and
    uses it in a larger statement (``WITH moved AS (...) INSERT ...``: the update and its audit rows in one round
    trip). The target table is aliased ``t``."""
    if not objs:
        raise ValueError("update_rows_sql takes at least one object")
    model = type(objs[0])
    meta = model._meta
    if any(type(obj) is not model for obj in objs):
        raise ValueError("update_rows takes objects of one model")
    ids = [obj.pk for obj in objs]
    if None in ids or len(set(ids)) != len(ids):
        raise ValueError("update_rows takes saved objects, each once")
    columns = [meta.get_field(name) for name in fields]
    if any(field.primary_key or not field.concrete for field in columns):
        raise ValueError("update_rows writes concrete fields other than the primary key")
    pk = meta.pk
    # Keys k0, k1...: a column's name is not always a valid record field name.
    readers = [operator.attrgetter(field.attname) for field in columns]
    rows = dict(zip([str(_scalar(key)) for key in ids], _document_rows(objs, columns, readers), strict=True))
    record = ", ".join(f"k{i} {f.db_type(connection)}" for i, f in enumerate(columns))
    names = ", ".join(f'"{field.column}"' for field in columns)
    values = ", ".join(f"v.k{i}" for i in range(len(columns)))
    # Each row is found by its key (the keys as an array the planner counts) and takes its values from the
    # document's entry for that key. Joined instead (``FROM jsonb_to_recordset(%s) AS v WHERE t.id = v.id``), the
    # plan depended on the table's statistics, which lag a tenant's growth (never analyzed: the CI server and the
    # bench run with autovacuum off): either the tenant's every row read through a tenant-leading index for each
    # batch (53 ms for 50 intents of a 10,000-intent tenant), or, with the keys, the document's rows typed again
    # for each row of the target (148 x 148 for a booking's orders: 13 of its 21 ms).
    sql = (
        f'UPDATE "{meta.db_table}" AS t SET ({names}) = (SELECT {values} FROM jsonb_to_record(%s::jsonb -> '
        f't."{pk.column}"::text) AS v({record})) WHERE t."{pk.column}" = ANY(%s::{pk.db_type(connection)}[])'
    )
    params: list = [json.dumps(rows), ids]
    if issubclass(model, TenantOwnedModel):  # the ORM lock, as ``TenantScopedManager`` applies it
        sql += ' AND t."tenant_id" = %s'
        params.append(tenancy.require_tenant_id())
    return sql, params


def insert_rows(objs: Sequence[Model], *, ignore_conflicts: bool = False) -> list[Model]:
    """Insert ``objs`` (new objects of one model, primary keys unset) in one statement and set their primary keys;
    what ``bulk_create(objs)`` writes (``auto_now``/``auto_now_add`` fields take the time of the call, defaults are
    the objects' own) without its per-field arrays: Django's ``INSERT ... SELECT * FROM UNNEST(...)`` dumps one
    array per column in Python, which cost more than the insert itself for a batch's orders. The rows travel as
    one JSON document, as in :func:`update_rows`. Row-level security checks every row's tenant.

    ``ignore_conflicts``: ``ON CONFLICT DO NOTHING``, as ``bulk_create(ignore_conflicts=True)``; the objects' primary
    keys are then left unset (a skipped row returns none)."""
    if not objs:
        return []
    model = type(objs[0])
    meta = model._meta
    if any(type(obj) is not model for obj in objs):
        raise ValueError("insert_rows takes objects of one model")
    if any(obj.pk is not None for obj in objs):
        raise ValueError("insert_rows takes new objects (their primary key unset)")
    columns = [field for field in meta.concrete_fields if not field.primary_key]
    rows = _insert_document(objs, columns, "insert_rows")
    record = ", ".join(f"k{i} {f.db_type(connection)}" for i, f in enumerate(columns))
    names = ", ".join(f'"{field.column}"' for field in columns)
    keys = ", ".join(f"v.k{i}" for i in range(len(columns)))
    # Inserted in the list's order (WITH ORDINALITY), so the ids returned are the objects' in turn.
    sql = (
        f'INSERT INTO "{meta.db_table}" ({names}) SELECT {keys} FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) '
        f"AS ({record})) WITH ORDINALITY AS v({keys.replace('v.', '')}, n) ORDER BY v.n "
    )
    if ignore_conflicts:
        with connection.cursor() as cursor:
            cursor.execute(sql + "ON CONFLICT DO NOTHING", [json.dumps(rows)])
        return list(objs)
    with connection.cursor() as cursor:
        cursor.execute(sql + f'RETURNING "{meta.pk.column}"', [json.dumps(rows)])
        pks = [pk for (pk,) in cursor.fetchall()]
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    return list(objs)


def allocate_ids(model: type[Model], count: int) -> list[int]:
    """``count`` primary keys of ``model`` from its own sequence (what its inserts would take), for
    :func:`insert_rows_sql`. Unused ones are only a gap, as after a rolled-back insert."""
    if count <= 0:
        return []
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def insert_rows_sql(objs: Sequence[Model]) -> tuple[str, list]:
    """The insert :func:`insert_rows` runs and its parameters, without a ``RETURNING``: for a caller that writes
    rows of several tables that refer to each other in one statement (``WITH a AS (INSERT ...) INSERT ...``, one
    round trip). The rows others refer to need their primary keys set first (:func:`allocate_ids`); the others'
    are left unset, for the table's default."""
    if not objs:
        raise ValueError("insert_rows_sql takes at least one object")
    model = type(objs[0])
    meta = model._meta
    if any(type(obj) is not model for obj in objs):
        raise ValueError("insert_rows_sql takes objects of one model")
    with_pk = objs[0].pk is not None
    if any((obj.pk is not None) != with_pk for obj in objs):
        raise ValueError("insert_rows_sql takes objects whose primary keys are all set, or all unset")
    columns = [field for field in meta.concrete_fields if with_pk or not field.primary_key]
    rows = _insert_document(objs, columns, "insert_rows_sql")
    record = ", ".join(f"k{i} {f.db_type(connection)}" for i, f in enumerate(columns))
    names = ", ".join(f'"{field.column}"' for field in columns)
    keys = ", ".join(f"v.k{i}" for i in range(len(columns)))
    sql = (
        f'INSERT INTO "{meta.db_table}" ({names}) SELECT {keys} FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) '
        f"AS ({record})) WITH ORDINALITY AS v({keys.replace('v.', '')}, n) ORDER BY v.n"
    )
    return sql, [json.dumps(rows)]


def _insert_document(objs: Sequence[Model], columns, operation_name: str) -> list[dict]:
    """The rows an insert of ``objs`` writes, one dict per object keyed ``k0, k1...`` by column, each value what
    ``field.pre_save(obj, add=True)`` gives, made JSON-ready by the column's converter (:func:`_converters`)."""
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name=operation_name)
    return _document_rows(objs, columns, [_pre_save(field) for field in columns])


def _document_rows(objs: Sequence[Model], columns, readers) -> list[dict]:
    """Per object, its ``k0, k1...`` entries: each column's ``reader(obj)`` through the column's converter. Built
    column by column (``map`` over the objects, no Python frame per cell where the value is taken as is) and then
    zipped into rows: the same values as row by row, each reader still called once per object."""
    values = []
    for read, convert in zip(readers, _converters(columns), strict=True):
        column = map(read, objs)
        values.append(list(column if convert is _identity else map(convert, column)))
    keys = [f"k{i}" for i in range(len(columns))]
    return [dict(zip(keys, row)) for row in zip(*values)]


_PLAIN_DATES = (DateField.pre_save, DateTimeField.pre_save, TimeField.pre_save)


def _pre_save(field):
    """``field.pre_save(obj, add=True)`` as a function of the object: where that is only the attribute's value (the
    base ``Field.pre_save``, or a date or time field with neither ``auto_now`` nor ``auto_now_add``), an
    ``attrgetter``, which skips a method call per field and row; any other field's own ``pre_save``."""
    pre_save = type(field).pre_save
    if pre_save is Field.pre_save or (
        pre_save in _PLAIN_DATES and not getattr(field, "auto_now", False) and not getattr(field, "auto_now_add", False)
    ):
        return operator.attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, add=True)
