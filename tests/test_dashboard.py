"""The dashboard: counts by state, expiries per month, what needs attention; constant queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates.choices import LifecycleState, OrderState
from certificates.dashboard import counts, expiry_chart
from certificates.models import Certificate, Order, Organization

from .test_certificate_list import make_inventory

pytestmark = pytest.mark.django_db
HOME = reverse("home")


def test_dashboard_needs_login_and_is_the_start_page(client, alice_client):
    assert client.get(HOME).status_code == 302
    assert alice_client.get(HOME).status_code == 200
    assert 'href="/"' in alice_client.get(reverse("certificates:list")).content.decode()


def test_dashboard_runs_the_same_number_of_queries_for_10_and_500_certificates(alice_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_client.get(HOME).status_code == 200
        return len(captured)

    make_inventory(10)
    small = queries()
    Certificate.objects.all().delete()
    Organization.objects.all().delete()
    make_inventory(500)
    assert queries() == small


def test_counts_by_state_and_renewal(alice_client):
    now = timezone.now()
    make_inventory(60)  # a third each active, superseded, blocked; expiries from -30 to +383 days
    rows = list(Certificate.objects.all())
    live = [c for c in rows if c.state == LifecycleState.ACTIVE and c.not_after > now]
    first, second = live[0], live[1]
    Order.objects.create(certificate=first, requested_by_label="scheduler")  # in progress
    Order.objects.create(certificate=second, requested_by_label="scheduler", attempts=3)  # retrying
    found = counts(now)
    assert found["active"] == len(live)
    assert found["expiring_30"] == sum(c.not_after <= now + dt.timedelta(days=30) for c in live)
    assert found["expiring_14"] == sum(c.not_after <= now + dt.timedelta(days=14) for c in live)
    assert found["expired"] == sum(c.state == LifecycleState.ACTIVE and c.not_after <= now for c in rows)
    assert found["blocked"] == sum(c.state == LifecycleState.BLOCKED for c in rows)
    assert (found["in_progress"], found["failing"]) == (2, 1)
    Order.objects.filter(certificate=second).update(state=OrderState.FAILED, completed_at=now)
    assert counts(now)["failing"] == 1 and counts(now)["in_progress"] == 1
    page = alice_client.get(HOME).content.decode()
    assert f"<strong>{found['active']}</strong><span>Active</span>" in page


def test_chart_has_twelve_months_and_counts_active_expiries():
    now = timezone.now()
    make_inventory(100)
    chart = expiry_chart(now)
    assert len(chart["bars"]) == 12
    assert chart["bars"][0].month == timezone.localtime(now).date().replace(day=1)
    end = chart["bars"][-1].month
    after_last = dt.datetime(
        end.year + end.month // 12, end.month % 12 + 1, 1, tzinfo=timezone.get_current_timezone()
    )
    expected = Certificate.objects.filter(
        state=LifecycleState.ACTIVE, not_after__gt=now, not_after__lt=after_last
    )
    assert sum(bar.count for bar in chart["bars"]) == expected.count()
    tallest = max(chart["bars"], key=lambda bar: bar.count)
    assert tallest.height == chart["baseline"] - 18 and tallest.y == 18


def test_attention_list_shows_soon_expiring_and_recently_expired(alice_client):
    make_inventory(40)
    page = alice_client.get(HOME).content.decode()
    now = timezone.now()
    soon = Certificate.objects.filter(
        state=LifecycleState.ACTIVE,
        not_after__gt=now - dt.timedelta(days=30),
        not_after__lte=now + dt.timedelta(days=30),
    ).order_by("not_after")[:10]
    assert soon
    for certificate in soon:
        assert certificate.get_absolute_url() in page
