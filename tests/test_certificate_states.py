"""A certificate's page never contradicts itself: actions appear only where they can work, and say why
not before any confirmation; "Digst has enabled renewal" is not a dead end."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates.models import Certificate, Order, Organization
from certificates.renewal import sweep
from certificates.services import import_certificate_file
from certificates.templatetags.inventory import days_left

from . import pki

pytestmark = pytest.mark.django_db
CA = pki.make_ca("States Test CA")


def imported(**fields) -> Certificate:  # type: ignore[no-untyped-def]
    leaf = pki.make_leaf(CA, pki.name("state-test"))
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    Certificate.objects.filter(pk=outcome.certificate.pk).update(**fields)
    return Certificate.objects.get(pk=outcome.certificate.pk)


def test_a_minute_after_expiry_is_expired_today_not_a_day_ago():
    now = timezone.now()
    assert days_left(now - dt.timedelta(minutes=1)) == "expired today"
    assert days_left(now - dt.timedelta(days=1, minutes=1)) == "expired 1 day ago"


def test_block_is_refused_before_the_confirmation_page_when_it_cannot_work(alice_client):
    monitor_only = imported()  # no key, no connected CA
    page = alice_client.get(monitor_only.get_absolute_url()).content.decode()
    assert "Block…" not in page and "cannot block this certificate" in page
    response = alice_client.get(reverse("certificates:block", args=[monitor_only.pk]), follow=True)
    assert "Block “" not in response.content.decode()  # no confirmation page
    assert "cannot block this certificate" in response.content.decode()


def test_expired_and_blocked_certificates_do_not_claim_to_stay_valid_or_to_auto_renew(alice_client):
    expired = imported(not_after=timezone.now() - dt.timedelta(days=2), auto_renew=True)
    page = alice_client.get(expired.get_absolute_url()).content.decode()
    assert "stays valid" not in page
    assert "Does not apply while the certificate cannot be renewed" in page
    assert ">On," not in page
    blocked = imported(state="blocked")
    page = alice_client.get(blocked.get_absolute_url()).content.decode()
    assert "Does not apply" in page and "Block…" not in page


def test_after_digst_enables_renewal_an_operator_can_try_again_and_so_does_the_sweep(olga_client, settings):
    certificate = imported(private_key_encrypted="held")
    organization = Organization.objects.create(cvr="12121299", name="Ikke aktiveret", renewal_enabled=False)
    Certificate.objects.filter(pk=certificate.pk).update(
        organization=organization, renew_at=timezone.now() - dt.timedelta(hours=1)
    )
    failed = Order.objects.create(
        certificate=certificate,
        requested_by_label="scheduler",
        state="failed",
        last_error_code="renewal_not_enabled",
        completed_at=timezone.now(),
    )
    page = olga_client.get(certificate.get_absolute_url()).content.decode()
    assert "Digst has enabled renewal: try again" in page
    # The sweep leaves it alone while the organisation is not enabled...
    assert not Certificate.objects.due_for_renewal().filter(pk=certificate.pk).exists()
    # ...and tries again once an administrator has marked it enabled.
    Organization.objects.filter(pk=organization.pk).update(renewal_enabled=True)
    assert Certificate.objects.due_for_renewal().filter(pk=certificate.pk).exists()
    Organization.objects.filter(pk=organization.pk).update(renewal_enabled=False)

    # The operator's button: the refusal is forgotten; with no CA connected for this test certificate,
    # the page says what still stands in the way instead of a dead end.
    response = olga_client.post(reverse("certificates:renew-enabled", args=[certificate.pk]), follow=True)
    assert Organization.objects.get(pk=organization.pk).renewal_enabled is None
    assert "No CA connected to the portal issued this certificate" in response.content.decode()
    assert failed.pk in Order.objects.values_list("pk", flat=True)
    assert sweep().opened == 0
