"""Template helpers for the inventory pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django import template
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from certificates.choices import STATUS_COLOURS, Environment, OcesType, Status
from certificates.models import Certificate, Event
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


@register.simple_tag
def situation_badge(situation: Situation) -> SafeString:
    """A coloured badge for a certificate's situation (certificates.situation), its sentence as a tip
    (includes/status_badge.html's markup, made here: the list shows one per row)."""
    return _badge(situation)


def _badge(situation: Situation) -> SafeString:
    return format_html(
        '<span class="badge badge-{}" title="{}">{}</span>',
        situation.colour,
        situation.headline,
        situation.label,
    )


@dataclass(frozen=True)
class ListingRow:
    """What a row of the certificate list shows, worked out once in Python: the template of a row then
    only places strings, which keeps a page of 50 rows cheap to render."""

    certificate: Certificate
    badge: SafeString
    headline: str
    url: str
    oces_type: str
    environment: str
    expires_iso: str
    expires: str
    days_left: str


@register.filter
def listing_rows(certificates: Iterable[Certificate]) -> list[ListingRow]:
    """The rows of the certificate list (certificates read `with_situation` and `for_listing`)."""
    now = timezone.now()
    # The choices' labels once per page (get_FOO_display hashes every lazy label of its field per call).
    oces_types = {value: str(label) for value, label in OcesType.choices}
    environments = {value: str(label) for value, label in Environment.choices}
    rows = []
    for certificate in certificates:
        situation = certificate.situation(now)
        expires = timezone.localtime(certificate.not_after)
        rows.append(
            ListingRow(
                certificate=certificate,
                badge=_badge(situation),
                headline=situation.headline,
                url=certificate.get_absolute_url(),
                oces_type=oces_types.get(certificate.oces_type, certificate.oces_type),
                environment=environments.get(certificate.environment, certificate.environment),
                expires_iso=expires.isoformat(),
                expires=expires.strftime("%Y-%m-%d %H:%M"),
                days_left=time_left(certificate.not_after, now),
            )
        )
    return rows


@dataclass(frozen=True)
class EventRow:
    """What a line of the dashboard's recent events shows, worked out once in Python (as ListingRow):
    the time as the `date` filter writes it ("c" and "Y-m-d H:i", local time), the kind's label, the
    certificate's address."""

    event: Event
    when_iso: str
    when: str
    kind: str
    certificate_url: str


@register.filter
def event_rows(events: Iterable[Event]) -> list[EventRow]:
    """The lines of recent events (events read with their certificate)."""
    rows = []
    for event in events:
        when = timezone.localtime(event.created_at)
        rows.append(
            EventRow(
                event=event,
                when_iso=when.isoformat(),
                when=when.strftime("%Y-%m-%d %H:%M"),
                kind=display(event, "kind"),
                certificate_url=event.certificate.get_absolute_url(),
            )
        )
    return rows


@register.filter
def display(instance: Model, field_name: str) -> str:
    """`instance.get_<field_name>_display()`, the same label, for a field with choices of strings: Django's
    method hashes every choice of the field on each call (a fifth of a millisecond), and a page shows
    one per event."""
    field = instance._meta.get_field(field_name)
    assert isinstance(field, Field)  # a column, not a relation
    value = getattr(instance, field.attname)
    return force_str(dict(field.flatchoices).get(value, value), strings_only=True)


@register.filter
def translated(stored: str) -> str:
    """A sentence stored in English (an order's last error) in the reader's language, when the catalogue
    has it."""
    return gettext(stored) if stored else stored
