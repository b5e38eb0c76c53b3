"""The shortcuts the dashboard and the certificate page take to render: each gives what it replaced."""

from __future__ import annotations

import pytest
from django.utils import timezone, translation

from certificates.choices import EventKind, SituationKey
from certificates.models import Certificate, Event
from certificates.templatetags.inventory import display

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
