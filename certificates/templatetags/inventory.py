"""Template helpers for the inventory pages."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.translation import gettext, ngettext

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
    now = timezone.now()
    days = (not_after - now).days
    if days >= 1:
        return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}
    if not_after > now:
        return gettext("less than a day")
    ago = (now - not_after).days  # whole days since expiry: a minute ago is "today", not "1 day ago"
    if not ago:
        return gettext("expired today")
    return ngettext("expired %(days)s day ago", "expired %(days)s days ago", ago) % {"days": ago}


@register.filter
def translated(stored: str) -> str:
    """A sentence stored in English (an order's last error) in the reader's language, when the catalogue
    has it."""
    return gettext(stored) if stored else stored
