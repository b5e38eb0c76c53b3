"""Queries compiled once per shape (certificates.compiled) give, at every instant and for every viewer,
the rows their ORM definition gives when compiled afresh."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import limit_to_organisations
from certificates import compiled
from certificates.choices import EventKind, LifecycleState, OrderState
from certificates.dashboard import recent_events
from certificates.models import Certificate, Event, Order, Organization

from .conftest import user_with_role
from .test_certificate_list import make_inventory

pytestmark = pytest.mark.django_db

# The page's facts: what the template and Certificate.situation read from the annotations.
FACTS = ("status", "renewing", "renewal_failing", "renewal_late", "has_successor")


def inventory(now: dt.datetime) -> list[int]:
    """make_inventory's spread, with renewals retrying, failed, open and late, and a renewal chain; the
    ids of those certificates."""
    make_inventory(90)
    current = Certificate.objects.current(now)
    retrying, failed, running = current.filter(not_after__gt=now + dt.timedelta(days=100))[:3]
    Order.objects.create(certificate=retrying, requested_by_label="scheduler", attempts=2)
    Order.objects.create(
        certificate=failed,
        requested_by_label="scheduler",
        state=OrderState.FAILED,
        completed_at=now - dt.timedelta(days=3),
    )
    Order.objects.create(certificate=running, requested_by_label="alice")
    late = (
        current.filter(not_after__gt=now + dt.timedelta(days=60))
        .exclude(pk__in=[retrying.pk, failed.pk, running.pk])
        .first()
    )
    Certificate.objects.filter(pk=late.pk).update(
        renew_at=now - dt.timedelta(days=3), private_key_encrypted="token", auto_renew=True
    )
    blocked = Certificate.objects.filter(state=LifecycleState.BLOCKED, not_after__gt=now).first()
    renewal = current.last()
    Certificate.objects.filter(pk=renewal.pk).update(renewed_from=blocked)
    return [retrying.pk, failed.pk, running.pk, late.pk, blocked.pk, renewal.pk]


def shapes() -> list[object]:
    return list(compiled._shapes.values())


def test_the_overview_binds_each_instant_as_compiling_it_afresh_would():
    now = timezone.now()
    inventory(now)
    compiled._forget()
    # The first instant finds the shapes; the others, from 40 days before to 45 after (certificates lapse,
    # start expiring, renewals stop counting as failing), only bind new values into them.
    for days in (0, -40, 10, 20, 45):
        when = now + dt.timedelta(days=days)
        expected = list(Certificate.objects.needs_attention(when).by_urgency(when))
        failing = Certificate.objects.renewal_failing(when).count()
        overview = Certificate.objects.attention_overview(when, limit=100, count_up_to=100)
        assert overview == (expected, len(expected), failing), days
        rows = {
            row.pk: row
            for row in Certificate.objects.filter(pk__in=[c.pk for c in expected]).with_situation(when)
        }
        for row in overview[0]:
            assert row.situation(when).headline == rows[row.pk].situation(when).headline
        assert expected or days != 0
    # Each kind's query and the rows' query were bound, not compiled per call (the shapes were kept).
    assert len([shape for shape in shapes() if isinstance(shape, compiled.Shape)]) >= 6


def test_the_page_binds_each_certificate_and_instant_as_compiling_it_afresh_would():
    now = timezone.now()
    special = inventory(now)
    every = list(Certificate.objects.order_by("pk").values_list("pk", flat=True))
    some = every[::9] + special  # each state, expiry and kind of renewal
    compiled._forget()
    for days in (0, -40, 45):
        when = now + dt.timedelta(days=days)
        for pk in some:
            page = Certificate.objects.for_page(pk, when)
            fresh = (
                Certificate.objects.with_status(when)
                .with_situation(when)
                .select_related("renewed_from")
                .get(pk=pk)
            )
            assert page is not None and page.pk == pk
            assert [getattr(page, name) for name in FACTS] == [getattr(fresh, name) for name in FACTS]
            assert page.organization == fresh.organization and page.renewed_from == fresh.renewed_from
            assert page.situation(when).headline == fresh.situation(when).headline
    assert Certificate.objects.for_page(max(every) + 1, now) is None
    assert [type(shape) for shape in shapes()] == [compiled.Shape]


def test_each_viewer_gets_their_own_shape(django_user_model):
    now = timezone.now()
    inventory(now)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    their_certificate = Certificate.objects.order_by("pk").last()
    Certificate.objects.filter(pk=their_certificate.pk).update(organization=theirs, cvr=theirs.cvr)
    viewer = user_with_role(django_user_model, "limited-viewer", "Viewer")
    limit_to_organisations(viewer, [ours])
    client = Client()
    client.force_login(viewer)
    page = reverse("certificates:detail", args=[their_certificate.pk])
    superuser = django_user_model.objects.create_superuser("root", "root@example.dk", "x")
    admin = Client()
    admin.force_login(superuser)

    assert admin.get(page).status_code == 200  # the shape of "every certificate" is kept...
    assert client.get(page).status_code == 404  # ...and not used for a viewer limited to others
    assert Certificate.objects.for_user(viewer).for_page(their_certificate.pk, now) is None
    mine = Certificate.objects.filter(organization=ours).first()
    assert client.get(reverse("certificates:detail", args=[mine.pk])).status_code == 200

    # The recent events likewise: the superuser's shape first, then the limited viewer's.
    Event.objects.create(certificate=their_certificate, kind=EventKind.IMPORTED, message="theirs")
    Event.objects.create(certificate=mine, kind=EventKind.IMPORTED, message="mine")
    assert [e.message for e in recent_events(superuser, limit=2)] == ["mine", "theirs"]
    assert [e.message for e in recent_events(viewer, limit=2)][:1] == ["mine"]
    assert "theirs" not in [e.message for e in recent_events(viewer)]
    assert "theirs" in [e.message for e in recent_events(superuser)]


def test_a_query_that_is_not_now_plus_a_span_is_compiled_each_time():
    now = timezone.now()
    make_inventory(10)

    def since_midnight(now: dt.datetime, ids: Sequence[int]) -> QuerySet[Any]:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)  # not a fixed span from now
        return Certificate.objects.filter(not_after__gt=midnight, pk__in=ids).values_list("pk")

    ids = list(Certificate.objects.values_list("pk", flat=True)[:3])
    with pytest.raises(compiled.ShapeError):
        compiled.find_shape(since_midnight, now, len(ids))
    assert compiled.shape_of("midnight", since_midnight, now, len(ids)) is None
    later = now + dt.timedelta(days=3, hours=5)
    direct = since_midnight(later, ids).query.sql_with_params()
    assert compiled.sql_with_params("midnight", since_midnight, later, ids) == (direct[0], list(direct[1]))

    def one_day_later(now: dt.datetime, ids: Sequence[int]) -> QuerySet[Any]:
        return Certificate.objects.filter(not_after__gt=now + dt.timedelta(days=1), pk__in=ids).values_list(
            "pk"
        )

    direct = one_day_later(later, ids).query.sql_with_params()
    assert compiled.sql_with_params("day", one_day_later, now, ids)  # finds the shape at `now`
    assert compiled.sql_with_params("day", one_day_later, later, ids) == (direct[0], list(direct[1]))
    assert (
        compiled.sql_with_params("none", lambda now, ids: Certificate.objects.filter(pk__in=ids), now) is None
    )


def test_a_setting_change_forgets_the_shapes(settings):
    now = timezone.now()
    make_inventory(40)
    Certificate.objects.attention_overview(now)
    assert shapes()
    expiring = Certificate.objects.filter(
        state=LifecycleState.ACTIVE, not_after__gt=now, not_after__lte=now + dt.timedelta(days=60)
    )
    settings.TRUSTVIEW_EXPIRING_DAYS = 60  # the window is a span from now: a new shape
    assert not shapes()
    rows, _, _ = Certificate.objects.attention_overview(now, limit=100)
    assert {row.pk for row in expiring.exclude(private_key_encrypted="token")} <= {row.pk for row in rows}


def test_a_page_for_an_id_no_row_can_have_is_not_found(admin_client):
    """An id beyond 64 bits (the URL accepts any digits) is a 404 on both databases, not a 500 from the
    database driver refusing to bind it."""
    assert admin_client.get(reverse("certificates:detail", args=[2**70])).status_code == 404
    assert admin_client.get(reverse("certificates:detail", args=[0])).status_code == 404
