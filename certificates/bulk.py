"""Inserting many rows of one model in a number of statements that does not grow with the rows.

`bulk_create` prepares every value of every row through its field (47 columns for a certificate) and,
on PostgreSQL, has psycopg quote each of them into the statement's text: for an import of 1,000
certificates that was half of the time. Here, on PostgreSQL, the rows go in with one COPY (and, when
the caller needs the ids, one statement first that takes them from the table's sequence); the values
of plain columns (text, numbers, booleans, aware timestamps, UUIDs, durations, foreign keys) are
handed to psycopg as they are, the others (JSON) prepared by their field as Django does. On other
databases (SQLite) one prepared INSERT is executed for every row (`executemany`), and the ids are
read back by a unique column.

As with `bulk_create`: no signals, no `save()`; auto_now and auto_now_add columns are set (to one
moment for the whole batch), and the objects come back with their ids and marked as stored. Triggers
run as for any insert (PostgreSQL fires statement-level triggers, with their transition tables, for
a COPY too). A unique violation raises Django's IntegrityError, so a caller's savepoint handles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection, models
from django.utils import timezone

M = TypeVar("M", bound=models.Model)

# Fields whose Python value psycopg adapts to the column exactly as the field's own preparation would.
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.UUIDField,
    models.DurationField,
    models.ForeignKey,
    models.AutoField,
    models.BigAutoField,
)


def insert(objects: Sequence[M], *, id_by: str | None = None) -> None:
    """Insert `objects` (all of one model, not yet stored) and mark them stored.

    `id_by`: when the caller needs the new ids, a unique column of the model by which they are read
    back where the database cannot hand them out first (SQLite); None when the ids are not needed.
    """
    if not objects:
        return
    model = type(objects[0])
    meta = model._meta
    now = timezone.now()
    for field in meta.concrete_fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objects:
                setattr(obj, field.attname, now)
    if connection.vendor == "postgresql":
        _copy(model, objects, with_ids=id_by is not None)
    else:
        _execute_many(model, objects, id_by)
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias


def _copy(model: type[models.Model], objects: Sequence[models.Model], *, with_ids: bool) -> None:
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.concrete_fields if with_ids or f is not pk]
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    prepare = [_plain_value(f) for f in fields]
    with connection.cursor() as cursor:
        if with_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk.column, len(objects)],
            )
            for obj, (new_id,) in zip(objects, cursor.fetchall(), strict=True):
                obj.pk = new_id
        attnames = [f.attname for f in fields]
        started = time.monotonic()
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for obj in objects:
                values = obj.__dict__
                copy.write_row([p(values[name]) for p, name in zip(prepare, attnames, strict=True)])
        if connection.queries_logged:  # so that query counts (tests, the debug toolbar) see the COPY
            connection.queries_log.append(
                {
                    "sql": f"COPY {table} ({columns}) FROM STDIN -- {len(objects)} rows",
                    "time": f"{time.monotonic() - started:.3f}",
                }
            )


def _plain_value(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How one column's value is handed to psycopg: as it is when psycopg adapts it as the field would
    prepare it, else through the field's own preparation."""

    def prepared(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    if isinstance(field, models.JSONField) and type(field).get_prep_value is models.JSONField.get_prep_value:
        # What the field's preparation ends in (psycopg's Jsonb), without its layers for expressions.
        adapt, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda value: (
            prepared(value)
            if value is None or hasattr(value, "resolve_expression")
            else adapt(value, encoder)
        )
    if isinstance(field, models.DateTimeField):
        # Aware timestamps as they are; a naive one (which the field would warn about and make aware).
        return lambda value: value if value is None or value.tzinfo is not None else prepared(value)
    if isinstance(field, models.CharField | models.TextField):
        # A choices enum member is a str subclass: its text, as the field's to_python gives it.
        return lambda value: value if value is None or type(value) is str else prepared(value)
    if isinstance(field, _PLAIN):
        return _as_it_is
    return prepared


def _as_it_is(value: Any) -> Any:
    return value


def _execute_many(model: type[models.Model], objects: Sequence[models.Model], id_by: str | None) -> None:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    rows = [[f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] for obj in objects]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
        if id_by is None:
            return
        key = meta.get_field(id_by)
        assert isinstance(key, models.Field)
        keys = [getattr(obj, key.attname) for obj in objects]
        assert meta.pk is not None
        quote = connection.ops.quote_name
        marks = ", ".join(["%s"] * len(keys))
        cursor.execute(
            f"SELECT {quote(str(key.column))}, {quote(str(meta.pk.column))} FROM {table} "  # noqa: S608
            f"WHERE {quote(str(key.column))} IN ({marks})",
            [key.get_db_prep_value(k, connection) for k in keys],
        )
        ids = dict(cursor.fetchall())
    for obj, k in zip(objects, keys, strict=True):
        obj.pk = ids[k]
