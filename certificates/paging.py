"""Pages of the certificate list that cost the same at page 1 and page 20,000, and counts that stay cheap.

Keyset pagination: a page is the `size` rows after (or before) the sort key of a boundary row, so the
database starts reading at that key in the ordering's index instead of counting past every earlier row
(OFFSET). The boundary travels in the page's links as an opaque cursor; the page number in the links is
only shown. A plain `?page=N` (an old bookmark) still works, with OFFSET.

Counts are exact up to COUNT_LIMIT; beyond it the list says "more than 10,000", or, for the whole
inventory on PostgreSQL, "about N" from the table's statistics (pg_class.reltuples), because counting a
million rows for a heading costs more than the rest of the page. A search counts up to SEARCH_COUNT_LIMIT:
its matches are read from the table one by one (a word's index cannot count them), and a common word's
10,001 took longer than the rest of the page (60-300 ms at 1,000,000 certificates); past a thousand, the
person searching narrows the search rather than reads on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Q
from django.http import QueryDict

from .models import Certificate, CertificateQuerySet

COUNT_LIMIT = 10_000
SEARCH_COUNT_LIMIT = 1_000


@dataclass(frozen=True)
class Total:
    """How many rows a list has: `value` exactly, or more than `value` (bounded), or about `value`."""

    value: int
    exact: bool = True
    estimated: bool = False


def bounded_count(certificates: CertificateQuerySet, limit: int | None = None) -> Total:
    """The number of `certificates`, counting at most `limit` (COUNT_LIMIT) + 1 rows (one query)."""
    limit = COUNT_LIMIT if limit is None else limit
    found = certificates.order_by().values("pk")[: limit + 1].count()
    if found <= limit:
        return Total(found)
    return Total(limit, exact=False)


def estimated_total() -> Total | None:
    """About how many certificates the table holds, from PostgreSQL's statistics (None elsewhere, or
    when the statistics are missing or say less than COUNT_LIMIT: then "more than" is the honest answer)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Certificate._meta.db_table]
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] <= COUNT_LIMIT:
        return None
    return Total(_round(int(row[0])), exact=False, estimated=True)


def _round(value: int) -> int:
    """To three significant digits: an estimate shown with six would claim a precision it lacks."""
    digits = len(str(value))
    step = 10 ** max(0, digits - 3)
    return round(value / step) * step


@dataclass
class KeysetPage:
    """One page of the list, with the query strings of its neighbours (None where there is none)."""

    object_list: list[Certificate]
    number: int
    total: Total
    size: int
    next_query: str | None
    previous_query: str | None

    @property
    def count(self) -> int:
        return self.total.value

    @property
    def num_pages(self) -> int | None:
        """The number of pages, when the count is exact."""
        if not self.total.exact:
            return None
        return max(1, -(-self.total.value // self.size))

    @property
    def has_next(self) -> bool:
        return self.next_query is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_query is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous


def encode_cursor(row: Certificate, ordering: tuple[str, ...]) -> str:
    values = [_plain(getattr(row, name.lstrip("-"))) for name in ordering]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(text: str, ordering: tuple[str, ...]) -> list[Any] | None:
    """The sort key values in a cursor, or None for anything that is not a cursor of this ordering (an
    edited or truncated link then shows the first page rather than an error)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(values, list) or len(values) != len(ordering) or None in values:
            return None
        return [_field(name).to_python(value) for name, value in zip(ordering, values, strict=True)]
    except (binascii.Error, ValueError, TypeError, ValidationError):
        return None


def _field(name: str) -> models.Field[Any, Any]:
    return Certificate._meta.get_field(name.lstrip("-"))  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def after(ordering: tuple[str, ...], values: list[Any]) -> Q:
    """The rows that come after `values` in `ordering` (a keyset condition): beyond the first key, or
    equal to it and beyond the second, and so on. The first key also gets a plain range condition (>= or
    <=), so that the database reads the ordering's index from the cursor on rather than from its start."""
    condition: Q | None = None
    for name, value in reversed(list(zip(ordering, values, strict=True))):
        field = name.lstrip("-")
        beyond = Q(**{f"{field}__{'lt' if name.startswith('-') else 'gt'}": value})
        condition = beyond if condition is None else beyond | (Q(**{field: value}) & condition)
    assert condition is not None
    first = ordering[0].lstrip("-")
    at_or_beyond = "lte" if ordering[0].startswith("-") else "gte"
    return Q(**{f"{first}__{at_or_beyond}": values[0]}) & condition


def _reverse(ordering: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name[1:] if name.startswith("-") else f"-{name}" for name in ordering)


def keyset_page(
    rows: CertificateQuerySet,
    total: Total,
    params: QueryDict,
    size: int,
) -> KeysetPage:
    """The page of `rows` (ordered, with a unique last sort key) that `params` asks for: `after` or
    `before` a cursor, else `page` N by OFFSET (old links), else the first. Two queries at most: the rows
    of the page (one more than a page, to know whether another follows) and, going back, the first page
    when fewer than a page lie before the cursor."""
    ordering = tuple(str(name) for name in rows.query.order_by)
    base = params.copy()
    for name in ("page", "after", "before"):
        base.pop(name, None)
    number = _positive(params.get("page"))
    after_cursor = decode_cursor(params.get("after", ""), ordering) if params.get("after") else None
    before_cursor = decode_cursor(params.get("before", ""), ordering) if params.get("before") else None

    if after_cursor is not None:
        found = list(rows.filter(after(ordering, after_cursor))[: size + 1])
        has_previous, has_next = True, len(found) > size
        found = found[:size]
        number = max(number, 2)
    elif before_cursor is not None:
        found = list(
            rows.filter(after(_reverse(ordering), before_cursor)).order_by(*_reverse(ordering))[: size + 1]
        )
        if len(found) > size:
            found = list(reversed(found[:size]))
            has_previous, has_next = True, True
            number = max(number, 2)
        else:  # fewer than a page before it: that is the first page
            found = list(rows[: size + 1])
            has_previous, has_next = False, len(found) > size
            found, number = found[:size], 1
    elif number > 1:
        offset = (number - 1) * size
        found = list(rows[offset : offset + size + 1])
        has_previous, has_next = True, len(found) > size
        found = found[:size]
    else:
        found = list(rows[: size + 1])
        has_previous, has_next = False, len(found) > size
        found, number = found[:size], 1

    def link(**extra: str | int) -> str:
        query = base.copy()
        for key, value in extra.items():
            query[key] = str(value)
        return query.urlencode()

    next_query = (
        link(page=number + 1, after=encode_cursor(found[-1], ordering)) if has_next and found else None
    )
    previous_query: str | None = None
    if has_previous:
        if number <= 2 or not found:  # back to the first page itself (or from past the end, to the start)
            previous_query = base.urlencode()
        else:
            previous_query = link(page=number - 1, before=encode_cursor(found[0], ordering))
    return KeysetPage(
        object_list=found,
        number=number,
        total=total,
        size=size,
        next_query=next_query,
        previous_query=previous_query,
    )


def _positive(text: str | None) -> int:
    try:
        return max(1, int(text or 1))
    except ValueError:
        return 1


def list_page(
    matching: CertificateQuerySet, params: QueryDict, size: int, whole_inventory: bool, searched: bool = False
) -> KeysetPage:
    """The certificate list's page: the matching certificates' bounded count (estimated when they are
    the whole inventory and more than COUNT_LIMIT; up to SEARCH_COUNT_LIMIT when `searched` for text), and
    the page `params` asks for, with each row's status, renewal state and whether a key is held. A
    constant number of queries whatever the page."""
    total = bounded_count(matching, SEARCH_COUNT_LIMIT if searched else None)
    if not total.exact and whole_inventory:
        total = estimated_total() or total
    rows = matching.with_status().with_situation().for_listing()
    return keyset_page(rows, total, params, size)
