"""The shortcuts the dashboard and the certificate page take to render: each gives what it replaced."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.urls import reverse, set_script_prefix
from django.utils import timezone, translation

from certificates import links
from certificates.choices import EventKind, SituationKey
from certificates.dashboard import MonthBar
from certificates.links import object_url
from certificates.models import Certificate, Event
from certificates.templatetags.inventory import display, event_rows

from .test_certificate_list import make_inventory
from .test_compiled_shapes import inventory


def test_display_is_get_display_in_each_language():
    certificate = Certificate(environment="production", oces_type="", source="import", state="blocked")
    for language in ("en", "da"):
        with translation.override(language):
            for kind in [*EventKind.values, "not a kind"]:
                event = Event(kind=kind)
                assert display(event, "kind") == event.get_kind_display()
            for field in ("environment", "oces_type", "source", "state"):
                assert display(certificate, field) == getattr(certificate, f"get_{field}_display")()
    with translation.override("da"):
        assert display(Event(kind=EventKind.values[0]), "kind") != EventKind.values[0]  # translated


@pytest.mark.django_db
def test_the_primary_action_is_the_first_useful_one_of_all_actions():
    now = timezone.now()
    inventory(now)
    keys = set()
    for certificate in Certificate.objects.with_situation(now):
        situation = certificate.situation(now)
        useful = {"issue", "renew_enabled"}
        if situation.key in (
            SituationKey.RENEWAL_FAILING,
            SituationKey.RENEWAL_LATE,
            SituationKey.NOT_RENEWABLE,
        ):
            useful.add("renew")
        expected = next((a for a in situation.actions if a.possible and a.key in useful), None)
        assert situation.primary == expected
        keys.add(expected.key if expected else None)
    assert len(keys) >= 2  # some with an action and some without


def test_the_charts_month_names_are_the_date_filters():
    template = Template('{{ m|date:"F Y" }}|{{ m|date:"M" }}|{{ m|date:"M Y" }}')
    for language in ("en", "da"):
        with translation.override(language):
            for month in range(1, 13):
                bar = MonthBar(dt.date(2027, month, 1), 3)
                expected = template.render(Context({"m": bar.month}))
                assert f"{bar.name}|{bar.short}|{bar.short_with_year}" == expected


@pytest.mark.django_db
def test_event_rows_say_what_the_date_filters_and_get_display_said():
    make_inventory(3)
    certificate = Certificate.objects.first()
    template = Template("{{ e.created_at|date:'c' }}|{{ e.created_at|date:'Y-m-d H:i' }}")
    moments = [  # around the end of summer time in Copenhagen, and with microseconds
        dt.datetime(2026, 10, 25, 0, 59, 59, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 7, 1, 22, 30, tzinfo=dt.UTC),
    ]
    for kind, moment in zip(EventKind.values, moments, strict=False):
        Event.objects.create(certificate=certificate, kind=kind, message="x", created_at=moment)
    events = list(Event.objects.select_related("certificate"))
    for language in ("en", "da"):
        with translation.override(language):
            for row in event_rows(events):
                event = row.event
                assert f"{row.when_iso}|{row.when}" == template.render(Context({"e": event}))
                assert row.kind == event.get_kind_display()
                assert row.certificate_url == event.certificate.get_absolute_url()


def test_object_url_is_reverse_under_any_script_prefix_and_urlconf(settings):
    names = ["certificates:detail", "certificates:renew", "certificates:renew-enabled", "certificates:block"]
    names += ["certificates:download-chain", "certificates:channel-test"]
    for prefix in ("/", "/portal/"):
        set_script_prefix(prefix)
        try:
            for name in names:
                for pk in (1, 7, 10, 123456789):
                    assert object_url(name, pk) == reverse(name, args=[pk])
        finally:
            set_script_prefix("/")
    assert object_url("certificates:detail", 5).startswith("/certificates/")
    assert links._parts
    settings.ROOT_URLCONF = "bench.urls"  # another URLconf: reversed again, not the kept text
    assert not links._parts
    assert object_url("certificates:detail", 5) == reverse("certificates:detail", args=[5])
