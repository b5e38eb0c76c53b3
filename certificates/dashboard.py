"""The numbers on the dashboard, each from an aggregate query: a constant number of queries whatever
the inventory size."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from .choices import OPEN_ORDER_STATES, LifecycleState, OrderKind, OrderState
from .models import Certificate, Event, Order

# A renewal that failed within this many days, for a certificate that is still active, counts as failing.
FAILING_WINDOW = dt.timedelta(days=30)


@dataclass
class MonthBar:
    """One month of the expiry chart."""

    month: dt.date
    count: int
    x: int = 0
    y: int = 0
    height: int = 0
    centre: int = 0


def counts(now: dt.datetime) -> dict[str, int]:
    """Certificates by state, and renewals in progress or failing (two queries)."""
    live = Q(state=LifecycleState.ACTIVE, not_after__gt=now)
    certificates = Certificate.objects.aggregate(
        active=Count("pk", filter=live),
        expiring_30=Count("pk", filter=live & Q(not_after__lte=now + dt.timedelta(days=30))),
        expiring_14=Count("pk", filter=live & Q(not_after__lte=now + dt.timedelta(days=14))),
        expired=Count("pk", filter=Q(state=LifecycleState.ACTIVE, not_after__lte=now)),
        blocked=Count("pk", filter=Q(state=LifecycleState.BLOCKED)),
    )
    renewals = Order.objects.filter(kind=OrderKind.RENEW).aggregate(
        in_progress=Count("pk", filter=Q(state__in=OPEN_ORDER_STATES)),
        failing=Count(
            "certificate",
            distinct=True,
            filter=Q(state__in=OPEN_ORDER_STATES, attempts__gt=0)
            | Q(
                state=OrderState.FAILED,
                completed_at__gt=now - FAILING_WINDOW,
                certificate__state=LifecycleState.ACTIVE,
                certificate__not_after__gt=now,
            ),
        ),
    )
    return {**certificates, **renewals}


def expiry_chart(now: dt.datetime, months: int = 12, width: int = 720, height: int = 160) -> dict[str, Any]:
    """Active certificates expiring per month for the next `months` months (one query), laid out as bars."""
    start = timezone.localtime(now).date().replace(day=1)
    month_starts = [_add_months(start, i) for i in range(months)]
    end = timezone.make_aware(dt.datetime.combine(_add_months(start, months), dt.time.min))
    rows = (
        Certificate.objects.filter(state=LifecycleState.ACTIVE, not_after__gt=now, not_after__lt=end)
        .annotate(month=TruncMonth("not_after"))
        .values("month")
        .annotate(count=Count("pk"))
    )
    per_month = {_as_date(row["month"]): row["count"] for row in rows}
    bars = [MonthBar(month, per_month.get(month, 0)) for month in month_starts]
    top = max([bar.count for bar in bars] + [1])
    slot, baseline = width // months, height - 20  # room below the baseline for month names
    for index, bar in enumerate(bars):
        bar.height = round(bar.count / top * (baseline - 18))  # and above the tallest bar for its number
        bar.x, bar.y, bar.centre = index * slot + 6, baseline - bar.height, index * slot + slot // 2
    return {"bars": bars, "width": width, "height": height, "baseline": baseline, "bar_width": slot - 12}


def attention(now: dt.datetime, limit: int = 10) -> list[Certificate]:
    """Active certificates that expired in the last 30 days or expire within 30, soonest first (one query)."""
    return list(
        Certificate.objects.with_status(now)
        .with_renewal_state(now)
        .for_listing()
        .filter(
            state=LifecycleState.ACTIVE,
            not_after__gt=now - dt.timedelta(days=30),
            not_after__lte=now + dt.timedelta(days=30),
        )
        .select_related("organization")
        .order_by("not_after")[:limit]
    )


def recent_events(limit: int = 10) -> list[Event]:
    return list(
        Event.objects.select_related("certificate").only(
            "kind", "actor_label", "message", "created_at", "certificate__subject_cn"
        )[:limit]
    )


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.month - 1 + months
    return dt.date(day.year + total // 12, total % 12 + 1, 1)


def _as_date(value: dt.datetime | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value
