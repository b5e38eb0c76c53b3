"""The dashboard: counts by state, expiries per month, what needs attention; constant queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Q
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


def test_counts_by_state_and_renewal_agree_with_the_list_each_card_links_to(alice_client):
    now = timezone.now()
    make_inventory(60)  # a third each active, superseded, blocked; expiries from -30 to +383 days
    rows = list(Certificate.objects.all())
    current = [c for c in rows if c.state == LifecycleState.ACTIVE and c.not_after > now]
    first, second = current[0], current[1]
    Order.objects.create(certificate=first, requested_by_label="scheduler")  # in progress
    Order.objects.create(certificate=second, requested_by_label="scheduler", attempts=3)  # retrying
    found = counts(now, Certificate.objects.all())
    soon = now + dt.timedelta(days=30)
    assert found["valid"] == sum(c.not_after > soon for c in current)
    assert found["expiring"] == sum(c.not_after <= soon for c in current)
    assert found["critical"] == sum(c.not_after <= now + dt.timedelta(days=14) for c in current)
    assert found["lapsed"] == sum(c.state == LifecycleState.ACTIVE and c.not_after <= now for c in rows)
    assert found["blocked"] == sum(c.state == LifecycleState.BLOCKED for c in rows)
    assert (found["renewing"], found["renewal_failing"]) == (2, 1)
    Order.objects.filter(certificate=second).update(state=OrderState.FAILED, completed_at=now)
    assert (
        counts(now, Certificate.objects.all())["renewal_failing"] == 1
        and counts(now, Certificate.objects.all())["renewing"] == 1
    )

    page = alice_client.get(HOME).content.decode()
    assert f"<strong>{found['valid']}</strong><span>Valid</span>" in page
    # Each card's number is the number of certificates on the list page it links to.
    for query, key in [
        ("status=valid", "valid"),
        ("status=expiring", "expiring"),
        ("status=expiring&expires_within=14", "critical"),
        ("situation=lapsed", "lapsed"),
        ("status=blocked", "blocked"),
        ("renewal=failing", "renewal_failing"),
        ("renewal=in_progress", "renewing"),
        ("situation=attention", "needs_attention"),
    ]:
        listed = alice_client.get(f"{reverse('certificates:list')}?{query}").context["page"].count
        assert listed == Certificate.objects.state_counts()[key], query


def test_a_running_renewal_makes_the_dashboard_and_list_refresh_through_htmx(alice_client):
    make_inventory(10)
    page = alice_client.get(HOME).content.decode()
    assert "hx-trigger" not in page  # nothing runs: nothing polls
    Order.objects.create(certificate=Certificate.objects.current().first(), requested_by_label="alice")
    page = alice_client.get(HOME).content.decode()
    assert 'id="dashboard-live"' in page and 'hx-trigger="every 3s"' in page
    partial = alice_client.get(HOME, HTTP_HX_REQUEST="true")
    assert partial.content.decode().lstrip().startswith('<div id="dashboard-live"')
    assert "<html" not in partial.content.decode() and "HX-Request" in partial["Vary"]
    listing = alice_client.get(reverse("certificates:list") + "?renewal=in_progress", HTTP_HX_REQUEST="true")
    assert 'id="certificate-results"' in listing.content.decode()
    assert 'hx-trigger="every 3s"' in listing.content.decode()


def test_chart_has_twelve_months_and_counts_active_expiries():
    now = timezone.now()
    make_inventory(100)
    chart = expiry_chart(now, Certificate.objects.all())
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


def test_attention_lists_expiring_failing_lapsed_and_blocked_but_not_the_fine_ones(alice_client):
    now = timezone.now()
    make_inventory(40)
    current = Certificate.objects.current(now)
    failing = current.filter(not_after__gt=now + dt.timedelta(days=60)).first()
    Order.objects.create(certificate=failing, requested_by_label="scheduler", attempts=2)
    page = alice_client.get(HOME).content.decode()
    expected = Certificate.objects.filter(
        Q(state=LifecycleState.ACTIVE, not_after__gt=now - dt.timedelta(days=30), not_after__lte=now)
        | Q(state=LifecycleState.ACTIVE, not_after__gt=now, not_after__lte=now + dt.timedelta(days=30))
        | Q(pk=failing.pk)
        | Q(state=LifecycleState.BLOCKED, not_after__gt=now)
    )
    assert set(Certificate.objects.needs_attention(now)) == set(expected)
    for certificate in expected.order_by("not_after")[:10]:
        assert certificate.get_absolute_url() in page
    fine = current.filter(not_after__gt=now + dt.timedelta(days=60)).exclude(pk=failing.pk).first()
    assert fine.get_absolute_url() not in page


def test_the_attention_overview_is_needs_attention_by_urgency_with_a_bounded_count(alice_client, monkeypatch):
    now = timezone.now()
    make_inventory(90)  # lapsed, expiring without automatic renewal (no key), blocked, fine ones
    current = Certificate.objects.current(now)
    failing = current.filter(not_after__gt=now + dt.timedelta(days=100))[:2]
    late = current.filter(not_after__gt=now + dt.timedelta(days=60)).exclude(pk__in=failing).first()
    for certificate in failing:
        Order.objects.create(certificate=certificate, requested_by_label="scheduler", attempts=2)
    Certificate.objects.filter(pk=late.pk).update(renew_at=now - dt.timedelta(days=3))
    expected = list(Certificate.objects.needs_attention(now).by_urgency(now))
    assert len(expected) > 20

    failing_count = Certificate.objects.renewal_failing(now).count()
    assert failing_count == 2
    overview = Certificate.objects.attention_overview(now, limit=100, count_up_to=100)
    assert overview == (expected, len(expected), failing_count)
    overview = Certificate.objects.attention_overview(now, limit=5, count_up_to=12)
    assert overview == (expected[:5], 13, failing_count)  # 13: more than 12

    monkeypatch.setattr("certificates.dashboard.ATTENTION_COUNT_LIMIT", 12)
    page = alice_client.get(HOME).content.decode()
    assert "Show all (more than 12)" in page
    monkeypatch.setattr("certificates.dashboard.ATTENTION_COUNT_LIMIT", 1000)
    assert f"Show all ({len(expected)})" in alice_client.get(HOME).content.decode()
