"""ORM queries compiled to SQL once per shape and run again with each request's values.

The dashboard's and the certificate page's queries are written with the derived states of
CertificateQuerySet (Q objects, EXISTS and scalar subqueries); Django took longer to turn them into
SQL (10-25 ms of CPU per page) than the database took to answer them. Their SQL text does not change
from one request to the next, only the values do: the clock (`now`, and times a fixed span from it) and
the certificate ids asked about. So a query is compiled from its ORM definition (the definition stays
the one in models.py) the first time its shape is asked for, and later requests bind new values into
the same SQL.

What is a value and what is part of the shape is found out, not assumed: the query is built at two
different instants with two different sets of ids, and each parameter must be a constant (the same in
both), one of the ids, or `now` plus a fixed span in both; a third build at other values must then give
exactly the parameters that binding gives. A query that fails this is compiled per request as before,
so the cache can make a page faster but never give it other rows, provided a build reads nothing
from the database itself (a value it read would be taken for a constant and kept): a build only puts
querysets together, with subqueries for what the database holds. Settings can change a query
(TRUSTVIEW_EXPIRING_DAYS, the issuers), so any setting change (tests override them) empties the cache.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.signals import setting_changed
from django.db import connections, models
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler
from django.dispatch import receiver

# A query is built from the clock and a list of certificate ids.
Build = Callable[[dt.datetime, Sequence[int]], "models.QuerySet[Any]"]

# The instants and ids the shape is found with: odd spans (days, hours, seconds and microseconds all
# differ), so that a time rounded or taken apart would not pass for `now` plus a span.
_PROBES = (
    (dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5), -1_000_000_001),
    (dt.timedelta(days=-40, hours=-5, seconds=-7, microseconds=-11), -2_000_000_001),
)
# How many shapes are kept (one per query, per organisation limit, per number of ids): enough for every
# viewer of a portal; beyond, the cache starts again.
MAX_SHAPES = 512


class ShapeError(Exception):
    """A query whose parameters are not constants, ids or `now` plus a fixed span."""


@dataclass(frozen=True)
class Slot:
    """Where a parameter comes from: a constant, `now` + `offset` (adapted for the database), or the
    id at `index`."""

    constant: Any = None
    offset: dt.timedelta | None = None
    index: int | None = None


@dataclass(frozen=True)
class Shape:
    """A query's SQL and where each of its parameters comes from; `compiler` (after compiling) knows how
    to turn its rows into model instances."""

    sql: str
    slots: tuple[Slot, ...]
    compiler: SQLCompiler
    alias: str

    def params(self, now: dt.datetime, ids: Sequence[int]) -> list[Any]:
        ops = connections[self.alias].ops
        found: list[Any] = []
        for slot in self.slots:
            if slot.offset is not None:
                found.append(ops.adapt_datetimefield_value(now + slot.offset))
            elif slot.index is not None:
                found.append(ids[slot.index])
            else:
                found.append(slot.constant)
        return found


class Empty:
    """A query that can match nothing (Django raised EmptyResultSet compiling it): no SQL to run."""


EMPTY = Empty()
_UNCACHEABLE = object()
_shapes: dict[Hashable, Shape | Empty | object] = {}
_lock = threading.Lock()


@receiver(setting_changed)
def _forget(**kwargs: Any) -> None:
    with _lock:
        _shapes.clear()


def _compile(queryset: models.QuerySet[Any]) -> tuple[str, list[Any], SQLCompiler]:
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    return sql, list(params), compiler


def _probe_ids(first: int, count: int) -> list[int]:
    return [first - index for index in range(count)]


def _slot(alias: str, values: list[tuple[Any, dt.datetime, list[int]]]) -> Slot:
    """The one source that explains a parameter's value in every build (value, now, ids)."""
    first, now, ids = values[0]
    if all(value == first and type(value) is type(first) for value, _, _ in values):
        return Slot(constant=first)
    if isinstance(first, int) and first in ids:
        index = ids.index(first)
        if all(isinstance(value, int) and value == other[index] for value, _, other in values):
            return Slot(index=index)
        raise ShapeError(first)
    ops = connections[alias].ops
    try:
        if isinstance(first, dt.datetime):
            offset = first - now
        elif isinstance(first, str):  # SQLite gives a time as text (UTC, ISO 8601)
            offset = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC) - now
        else:
            raise ShapeError(first)
        if all(value == ops.adapt_datetimefield_value(when + offset) for value, when, _ in values):
            return Slot(offset=offset)
    except (TypeError, ValueError):  # not a time, or a naive one against an aware `now`
        pass
    raise ShapeError(first)


def find_shape(build: Build, now: dt.datetime, count: int) -> Shape | Empty:
    """The shape of the queries `build` makes for `count` ids (see the module's docstring)."""
    builds = [(now, _probe_ids(-1, count))] + [
        (now + span, _probe_ids(first, count)) for span, first in _PROBES
    ]
    compiled: list[tuple[str, list[Any], SQLCompiler, dt.datetime, list[int]]] = []
    for when, ids in builds:
        with contextlib.suppress(EmptyResultSet):
            compiled.append((*_compile(build(when, ids)), when, ids))
    if not compiled:
        return EMPTY
    if len(compiled) < len(builds):
        raise ShapeError("empty for some values only")
    # The first two builds find each parameter's source; the third checks it.
    (sql, params, compiler, now0, ids0), (sql1, params1, _, now1, ids1), last = compiled
    sql2, params2, _, now2, ids2 = last
    if not sql == sql1 == sql2 or not len(params) == len(params1) == len(params2):
        raise ShapeError("the SQL depends on the values")
    alias = compiler.using or "default"
    slots = tuple(
        _slot(alias, [(value0, now0, ids0), (value1, now1, ids1)])
        for value0, value1 in zip(params, params1, strict=True)
    )
    shape = Shape(sql, slots, compiler, alias)
    if shape.params(now2, ids2) != params2:
        raise ShapeError("a third build does not bind as the first two")
    return shape


def shape_of(key: Hashable, build: Build, now: dt.datetime, count: int = 0) -> Shape | Empty | None:
    """The cached shape of `build`'s queries for `count` ids under `key` (which must name everything
    else the query depends on: who asks, which query); None when the query has none (compile it)."""
    full_key = (key, count)
    found = _shapes.get(full_key)
    if found is None:
        try:
            found = find_shape(build, now, count)
        except ShapeError:
            found = _UNCACHEABLE
        with _lock:
            if len(_shapes) >= MAX_SHAPES:
                _shapes.clear()
            _shapes[full_key] = found
    if isinstance(found, Shape | Empty):
        return found
    return None


def sql_with_params(
    key: Hashable, build: Build, now: dt.datetime, ids: Sequence[int] = ()
) -> tuple[str, list[Any]] | None:
    """The SQL and parameters of `build(now, ids)`, from the cached shape when it has one; None when
    the query can match nothing."""
    shape = shape_of(key, build, now, len(ids))
    if isinstance(shape, Empty):
        return None
    if shape is None:
        try:
            sql, params, _ = _compile(build(now, ids))
        except EmptyResultSet:
            return None
        return sql, params
    return shape.sql, shape.params(now, ids)


def instances(key: Hashable, build: Build, now: dt.datetime, ids: Sequence[int] = ()) -> list[Any]:
    """The model instances `build(now, ids)` gives (annotations and select_related included), read with
    the cached shape's SQL when it has one."""
    shape = shape_of(key, build, now, len(ids))
    if isinstance(shape, Empty):
        return []
    if shape is None:
        return list(build(now, ids))
    connection = connections[shape.alias]
    with connection.cursor() as cursor:
        cursor.execute(shape.sql, shape.params(now, ids))
        rows = cursor.fetchall()
    return list(_models(shape.compiler, shape.alias, rows))


def _models(compiler: SQLCompiler, alias: str, rows: list[Any]) -> Iterator[Any]:
    """What Django's ModelIterable does with a compiled query's rows."""
    select, klass_info, annotation_col_map = compiler.select, compiler.klass_info, compiler.annotation_col_map
    assert klass_info is not None  # a query of model instances
    model_cls = klass_info["model"]
    select_fields = klass_info["select_fields"]
    start, end = select_fields[0], select_fields[-1] + 1
    init_list = [column[0].target.attname for column in select[start:end]]
    # (django-stubs describes a later Django, whose populators also take a fetch mode.)
    related_populators = get_related_populators(klass_info, select, alias)  # type: ignore[call-arg]
    if compiler.has_extra_select:
        rows = [row[: compiler.col_count] for row in rows]
    for row in compiler.results_iter([rows]):
        obj = model_cls.from_db(alias, init_list, row[start:end])
        for populator in related_populators:
            populator.populate(row, obj)
        for name, position in (annotation_col_map or {}).items():
            setattr(obj, name, row[position])
        yield obj
