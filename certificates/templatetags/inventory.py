"""Template helpers for the inventory pages."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from certificates.choices import STATUS_COLOURS, Status

register = template.Library()


@register.inclusion_tag("includes/status_badge.html")
def status_badge(status: str) -> dict[str, str]:
    """A coloured badge for a Status value (from CertificateQuerySet.with_status)."""
    value = Status(status)
    return {"label": str(value.label), "colour": STATUS_COLOURS[value]}


@register.filter
def days_left(not_after: dt.datetime) -> str:
    """'123 days', 'today', or 'expired 5 days ago'."""
    days = (not_after - timezone.now()).days
    if days > 1:
        return f"{days} days"
    if days == 1:
        return "1 day"
    if not_after > timezone.now():
        return "less than a day"
    ago = -days
    return f"expired {ago} day{'s' if ago != 1 else ''} ago" if ago else "expired today"
