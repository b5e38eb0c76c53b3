"""Template helpers for the inventory pages."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.translation import gettext

from certificates.choices import STATUS_COLOURS, Status
from certificates.situation import Situation, time_left

register = template.Library()


@register.inclusion_tag("includes/status_badge.html")
def status_badge(status: str) -> dict[str, str]:
    """A coloured badge for a Status value (from CertificateQuerySet.with_status)."""
    value = Status(status)
    return {"label": str(value.label), "colour": STATUS_COLOURS[value]}


@register.filter
def days_left(not_after: dt.datetime) -> str:
    """'123 days', 'less than a day', 'expired today' or 'expired 5 days ago'."""
    return time_left(not_after)


@register.inclusion_tag("includes/status_badge.html")
def situation_badge(situation: Situation) -> dict[str, str]:
    """A coloured badge for a certificate's situation (certificates.situation), its sentence as a tip."""
    return {"label": situation.label, "colour": situation.colour, "title": situation.headline}


@register.filter
def translated(stored: str) -> str:
    """A sentence stored in English (an order's last error) in the reader's language, when the catalogue
    has it."""
    return gettext(stored) if stored else stored
