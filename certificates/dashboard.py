"""The numbers on the dashboard, each from an aggregate query: a constant number of queries whatever
the inventory size, and for the cards and the chart a cost that follows the days, not the certificates
(they sum ExpiryTally's rows per day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import dateformat, timezone

from . import compiled
from .choices import LifecycleState
from .models import CertificateQuerySet, Event, ExpiryWindow, Organization, organisation_limit
from .situation import Situation

# The dashboard counts what needs attention up to this many (see `attention`).
ATTENTION_COUNT_LIMIT = 100


@dataclass
class MonthBar:
    """One month of the expiry chart, with its names as the template's `date` filter would write them
    ("F Y", "M", "M Y" in the reader's language), worked out once here: 36 filters cost the page more
    than the numbers."""

    month: dt.date
    count: int
    x: int = 0
    y: int = 0
    height: int = 0
    centre: int = 0
    name: str = ""
    short: str = ""
    short_with_year: str = ""

    def __post_init__(self) -> None:
        self.name = dateformat.format(self.month, "F Y")
        self.short = dateformat.format(self.month, "M")
        self.short_with_year = dateformat.format(self.month, "M Y")


def counts(
    now: dt.datetime,
    certificates: CertificateQuerySet,
    organisations: QuerySet[Organization] | None = None,
) -> dict[str, int]:
    """Certificates by state, renewals in progress and failing: the same numbers as `state_counts`,
    which the list filters use, so a card and the list it links to agree. `certificates` is what the
    viewer may see (`for_user`), `organisations` their organisation limit. (What needs attention is
    counted by `attention`.)"""
    return certificates.tallied_state_counts(now, organisations)


def expiry_chart(
    now: dt.datetime,
    certificates: CertificateQuerySet,
    organisations: QuerySet[Organization] | None = None,
) -> dict[str, Any]:
    """Current certificates expiring per month (local time) for the next twelve months, laid out as bars
    (one statement: see CertificateQuerySet.count_by_expiry; arguments as for `counts`)."""
    return counts_and_chart(now, certificates, organisations)[1]


def counts_and_chart(
    now: dt.datetime,
    certificates: CertificateQuerySet,
    organisations: QuerySet[Organization] | None = None,
    months: int = 12,
    width: int = 720,
    height: int = 160,
    renewal_failing: int | None = None,
) -> tuple[dict[str, int], dict[str, Any]]:
    """`counts` and `expiry_chart` from the same statement of the tally and the certificates
    (`renewal_failing`: that count, when `attention` has it)."""
    start = timezone.localtime(now).date().replace(day=1)
    month_starts = [_add_months(start, i) for i in range(months + 1)]
    bounds = [timezone.make_aware(dt.datetime.combine(day, dt.time.min)) for day in month_starts]
    bounds[0] = now + dt.timedelta(microseconds=1)  # current: not_after > now
    windows = {
        f"month{index}": ExpiryWindow(LifecycleState.ACTIVE, bounds[index], bounds[index + 1])
        for index in range(months)
    }
    found = certificates.tallied_state_counts(
        now, organisations, also=windows, renewal_failing=renewal_failing
    )
    bars = [MonthBar(month_starts[index], found.pop(f"month{index}")) for index in range(months)]
    top = max([bar.count for bar in bars] + [1])
    slot, baseline = width // months, height - 20  # room below the baseline for month names
    for index, bar in enumerate(bars):
        bar.height = round(bar.count / top * (baseline - 18))  # and above the tallest bar for its number
        bar.x, bar.y, bar.centre = index * slot + 6, baseline - bar.height, index * slot + slot // 2
    chart = {"bars": bars, "width": width, "height": height, "baseline": baseline, "bar_width": slot - 12}
    return found, chart


@dataclass
class Attention:
    """What needs attention: the most urgent, and how many there are (`more`: more than `count`); and
    how many renewals are failing (counted in the same read)."""

    situations: list[Situation]
    count: int
    more: bool
    renewal_failing: int = 0


def attention(now: dt.datetime, certificates: CertificateQuerySet, limit: int = 10) -> Attention:
    """What a person must act on (Certificate.objects.needs_attention), most urgent first (expired
    without a renewal, renewal failing, late, expiring without automatic renewal, blocked), each with its
    situation: the sentence, and the action or what to do; and how many, up to ATTENTION_COUNT_LIMIT
    (each must be read to know; the list the count links to counts further)."""
    rows, found, failing = certificates.attention_overview(now, limit, ATTENTION_COUNT_LIMIT)
    return Attention(
        [certificate.situation(now) for certificate in rows],
        min(found, ATTENTION_COUNT_LIMIT),
        more=found > ATTENTION_COUNT_LIMIT,
        renewal_failing=failing,
    )


def recent_events(user: AbstractUser | AnonymousUser, limit: int = 10) -> list[Event]:
    """The latest history entries of the certificates `user` may see (their organisation limit), read
    with a query compiled once per shape (certificates.compiled)."""
    organisations = organisation_limit(user)

    def build(now: dt.datetime, ids: Sequence[int]) -> QuerySet[Event]:
        events = Event.objects.select_related("certificate").only(
            "kind", "actor_label", "message", "created_at", "certificate__subject_cn"
        )
        if organisations is not None:
            events = events.filter(certificate__organization__in=organisations)
        return events[:limit]

    viewer = None
    if organisations is not None:
        sql, params = organisations.query.sql_with_params()
        viewer = (sql, tuple(params))
    return compiled.instances(("recent events", limit, viewer), build, timezone.now())


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.month - 1 + months
    return dt.date(day.year + total // 12, total % 12 + 1, 1)
