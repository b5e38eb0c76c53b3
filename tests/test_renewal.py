"""Renewal through the real simulator: Renew now, order steps, faults, permanent failures, alerts, block."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates.choices import EventKind, LifecycleState, OrderState
from certificates.models import Certificate, Event, Order, Organization, renewal_due_at
from certificates.renewal import advance_order, backoff_seconds, block_certificate, request_renewal, sweep
from mitid.models import CertificateProfile

pytestmark = pytest.mark.django_db


def run_to_completion(order: Order, steps: int = 12) -> Order:
    """Take order steps as the worker would, each at the time the order asks for."""
    for _ in range(steps):
        order.refresh_from_db()
        if not order.is_open:
            return order
        advance_order(order.pk, now=max(timezone.now(), order.next_attempt_at))
    order.refresh_from_db()
    return order


# --- policy ----------------------------------------------------------------------------------------


def test_renewal_is_due_renew_before_expiry_or_at_a_third_of_a_short_lifetime():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    three_years = start + dt.timedelta(days=1095)
    assert renewal_due_at(start, three_years, dt.timedelta(days=30)) == three_years - dt.timedelta(days=30)
    ten_minutes = start + dt.timedelta(minutes=10)
    assert (
        renewal_due_at(start, ten_minutes, dt.timedelta(days=30))
        == ten_minutes - dt.timedelta(minutes=10) / 3
    )
    # Exactly half the lifetime counts as short.
    sixty_days = start + dt.timedelta(days=60)
    assert renewal_due_at(start, sixty_days, dt.timedelta(days=30)) == sixty_days - dt.timedelta(days=20)


def test_backoff_doubles_with_jitter_is_capped_and_honours_retry_after(settings):
    settings.TRUSTVIEW_RETRY_BASE_SECONDS, settings.TRUSTVIEW_RETRY_CAP_SECONDS = 10, 100
    assert 5 <= backoff_seconds(1) <= 10
    assert 20 <= backoff_seconds(3) <= 40
    assert 50 <= backoff_seconds(12) <= 100
    assert backoff_seconds(1, retry_after=60) == 60


# --- Renew now, end to end with the simulator ------------------------------------------------------


def test_renew_now_renews_with_the_same_identity_and_supersedes_the_old(alice_client, renewable, simulator):
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    old.auto_renew, old.renew_before = False, dt.timedelta(days=45)
    old.save()

    response = alice_client.post(reverse("certificates:renew", args=[old.pk]), follow=True)
    assert "Renewal requested." in response.content.decode()
    assert "Renewal in progress" in response.content.decode()
    order = Order.objects.get()
    assert (order.state, order.requested_by_label) == (OrderState.PENDING, "alice")

    order = run_to_completion(order)
    assert order.state == OrderState.ISSUED
    new = order.new_certificate
    old.refresh_from_db()
    assert (
        new.renewed_from == old
        and old.state == LifecycleState.SUPERSEDED
        and new.state == LifecycleState.ACTIVE
    )
    assert (new.oces_uuid, new.cvr, new.subject_dn) == (old.oces_uuid, old.cvr, old.subject_dn)
    assert new.serial_number != old.serial_number and new.has_private_key
    assert (new.auto_renew, new.renew_before) == (False, dt.timedelta(days=45))
    assert list(CertificateProfile.objects.get().certificates.order_by("pk")) == [old, new]
    assert Organization.objects.get(cvr=old.cvr).renewal_enabled is True
    kinds = list(Event.objects.filter(certificate=old).values_list("kind", flat=True))
    assert EventKind.RENEWAL_REQUESTED in kinds and EventKind.RENEWED in kinds
    renewed = Event.objects.get(certificate=new)
    assert (
        renewed.kind == EventKind.RENEWED and renewed.actor_label == "alice"
    )  # who clicked, not "scheduler"

    # The page's live line (htmx) opens the new certificate, which says it is the renewal.
    progress = alice_client.get(
        reverse("certificates:renewal-progress", args=[old.pk]), HTTP_HX_REQUEST="true"
    )
    assert progress.status_code == 204 and progress["HX-Redirect"] == new.get_absolute_url()
    new_page = alice_client.get(new.get_absolute_url()).content.decode()
    assert "Renewed: this is the new certificate." in new_page
    old_page = alice_client.get(old.get_absolute_url()).content.decode()
    assert "already been renewed" in old_page and new.get_absolute_url() in old_page


@pytest.mark.django_db(transaction=True)
def test_two_clicks_and_a_sweep_at_once_make_one_renewal(renewable, simulator, alice):
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    Certificate.objects.filter(pk=old.pk).update(renew_at=timezone.now() - dt.timedelta(minutes=1))
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def at_once(action) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=10)
            action()
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=at_once, args=(lambda: request_renewal(Certificate.objects.get(pk=old.pk), alice),)
        ),
        threading.Thread(
            target=at_once, args=(lambda: request_renewal(Certificate.objects.get(pk=old.pk), alice),)
        ),
        threading.Thread(target=at_once, args=(sweep,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert Order.objects.count() == 1
    # Two workers taking the same step at once: one claims it, the other finds nothing to do.
    order = Order.objects.get()
    workers = [
        threading.Thread(target=lambda: (advance_order(order.pk), connection.close())) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    run_to_completion(order)
    assert Certificate.objects.filter(renewed_from=old).count() == 1
    assert Certificate.objects.count() == 2


def test_faults_delay_the_renewal_but_lose_nothing_and_duplicate_nothing(
    renewable, simulator, settings, vera_client
):
    settings.TRUSTVIEW_RETRY_BASE_SECONDS, settings.TRUSTVIEW_RETRY_CAP_SECONDS = 1, 4
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    at_the_ca = simulator.cli("status")["environments"]["test"]
    order, _ = request_renewal(old, "test")
    simulator.cli(
        "fault",
        "error",
        "--code",
        "unavailable",
        "--retry-after",
        "3",
        "--count",
        "1",
        "--path",
        "/v1/renewals",
    )
    simulator.cli("fault", "drop", "--count", "2", "--path", "/v1/renewals")

    before = timezone.now()
    advance_order(order.pk)
    order.refresh_from_db()
    assert order.is_open and order.attempts == 1 and order.last_error_code == "unavailable"
    progress = vera_client.get(
        reverse("certificates:renewal-progress", args=[old.pk]),
        HTTP_ACCEPT_LANGUAGE="da",
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Fornyelse i gang" in progress and "Prøver igen: MitID Erhverv" in progress
    assert 'hx-trigger="every 2s"' in progress  # htmx keeps following it
    assert order.next_attempt_at >= before + dt.timedelta(seconds=3)  # Retry-After honoured
    assert "MitID Erhverv is unavailable right now" in order.last_error

    order = run_to_completion(order)
    assert order.state == OrderState.ISSUED
    assert Certificate.objects.filter(renewed_from=old).count() == 1
    after = simulator.cli("status")["environments"]["test"]
    assert after["certificates"] == at_the_ca["certificates"] + 1  # the CA made one certificate, not three
    assert after["orders"] == at_the_ca["orders"] + 1


def test_renewal_that_keeps_failing_alerts_once_and_keeps_trying(renewable, simulator, settings, admin_user):
    settings.TRUSTVIEW_ALERT_AFTER_FAILURES = 2
    settings.TRUSTVIEW_RETRY_BASE_SECONDS, settings.TRUSTVIEW_RETRY_CAP_SECONDS = 1, 2
    old = renewable()
    order, _ = request_renewal(old, "test")
    simulator.cli("fault", "error", "--code", "unavailable", "--count", "4", "--path", "/v1/renewals")
    for _ in range(4):
        order.refresh_from_db()
        advance_order(order.pk, now=order.next_attempt_at)
    order.refresh_from_db()
    assert order.is_open and order.attempts == 4 and order.alerted
    failing = [m for m in mail.outbox if "Renewals keep failing" in m.subject]
    assert len(failing) == 1
    assert "The portal keeps trying" in failing[0].body and failing[0].to == [admin_user.email]


def test_permanent_failure_ends_the_order_and_tells_a_person_what_to_do(
    alice_client, simulator, mitid_settings, admin_user
):
    from mitid.services import issue_certificate

    profile = simulator.create_profile(cvr="13131313")  # renewal not enabled for this CVR at the CA
    old = issue_certificate(
        environment="test", reference_number=profile["reference_number"], pin=profile["pin"], actor="test"
    ).certificate
    alice_client.post(reverse("certificates:renew", args=[old.pk]))
    order = run_to_completion(Order.objects.get())
    assert order.state == OrderState.FAILED and order.last_error_code == "renewal_not_enabled"
    assert Event.objects.filter(certificate=old, kind=EventKind.RENEWAL_FAILED).exists()
    (alert,) = [m for m in mail.outbox if "Renewal failed" in m.subject]
    assert "mitiderhverv@digst.dk" in alert.body and old.get_absolute_url() in alert.body
    html = alert.alternatives[0][0]
    assert "mitiderhverv@digst.dk" in html
    # The portal has learnt it, and says so instead of offering the button.
    assert Organization.objects.get(cvr="13131313").renewal_enabled is False
    page = alice_client.get(old.get_absolute_url()).content.decode()
    assert "has not enabled renewal for this organisation" in page and "mitiderhverv@digst.dk" in page
    assert '<button type="button" disabled' in page


# --- when renewal is not possible -------------------------------------------------------------------


def test_renew_button_says_why_for_expired_blocked_and_monitor_only(alice_client):
    from certificates.services import import_certificate_file

    from .conftest import SYSTEM_2023, SYSTEM_2026, oces3

    (expired,) = import_certificate_file(oces3(SYSTEM_2023), actor="test")
    (monitor_only,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    page = alice_client.get(expired.certificate.get_absolute_url()).content.decode()
    assert "has expired, so it cannot be renewed: order a new certificate" in page
    page = alice_client.get(monitor_only.certificate.get_absolute_url()).content.decode()
    assert "holds no private key for this certificate (monitor only)" in page
    response = alice_client.post(
        reverse("certificates:renew", args=[monitor_only.certificate.pk]), follow=True
    )
    assert "monitor only" in response.content.decode()
    assert not Order.objects.exists()
    Certificate.objects.filter(pk=monitor_only.certificate.pk).update(state=LifecycleState.BLOCKED)
    page = alice_client.get(monitor_only.certificate.get_absolute_url()).content.decode()
    assert "The certificate is blocked, so it cannot be renewed." in page


# --- block ----------------------------------------------------------------------------------------------


def test_block_asks_first_then_blocks_at_the_ca_and_everywhere(alice_client, renewable, simulator, settings):
    certificate = renewable(name="Bogføring")
    order, _ = request_renewal(certificate, "test")
    confirm = alice_client.get(reverse("certificates:block", args=[certificate.pk])).content.decode()
    assert "Block “Bogføring”?" in confirm and "This cannot be undone." in confirm
    assert certificate.serial_number_display in confirm
    response = alice_client.post(reverse("certificates:block", args=[certificate.pk]), follow=True)
    assert "“Bogføring” is blocked." in response.content.decode()
    certificate.refresh_from_db()
    assert certificate.state == LifecycleState.BLOCKED
    order.refresh_from_db()
    assert order.state == OrderState.FAILED
    assert Event.objects.filter(certificate=certificate, kind=EventKind.BLOCKED).count() == 1
    listing = alice_client.get(reverse("certificates:list"), {"status": "blocked"})
    assert [c.pk for c in listing.context["page"].object_list] == [certificate.pk]
    # The CA says so too: OCSP reports it revoked.
    from certificates.revocation import check_one

    Certificate.objects.filter(pk=certificate.pk).update(state=LifecycleState.ACTIVE)
    assert check_one(Certificate.objects.get(pk=certificate.pk)) is True
    block_certificate(Certificate.objects.get(pk=certificate.pk), "test")  # blocking twice changes nothing


# --- the sweep ------------------------------------------------------------------------------------------


def test_sweep_opens_orders_only_for_due_renewable_certificates(renewable, simulator):
    due, not_due, manual, failed = (
        renewable("14141414"),
        renewable("14141414"),
        renewable("14141414"),
        renewable("14141414"),
    )
    past = timezone.now() - dt.timedelta(minutes=1)
    Certificate.objects.filter(pk__in=[due.pk, manual.pk, failed.pk]).update(renew_at=past)
    Certificate.objects.filter(pk=manual.pk).update(auto_renew=False)
    Order.objects.create(
        certificate=failed,
        state=OrderState.FAILED,
        requested_by_label="scheduler",
        completed_at=timezone.now(),
    )
    result = sweep()
    assert result.opened == 1
    assert list(Order.objects.filter(state=OrderState.PENDING).values_list("certificate_id", flat=True)) == [
        due.pk
    ]
    # The new order is handed to a worker by this sweep, not left for the next one (a minute later).
    assert result.due_orders == [Order.objects.get(state=OrderState.PENDING).pk]
    assert sweep().opened == 0  # the open order is not opened twice
    assert not_due.pk not in Order.objects.values_list("certificate_id", flat=True)


def test_what_is_due_is_one_query_whatever_the_inventory_size():
    from .test_certificate_list import make_inventory

    counts = []
    for count in (10, 300):
        Certificate.objects.all().delete()
        Organization.objects.all().delete()
        make_inventory(count)
        # All due by the clock, but none can be renewed (no key held): nothing to open, and no query per row.
        Certificate.objects.update(renew_at=timezone.now() - dt.timedelta(days=1), private_key_encrypted="")
        sweep()  # the first sweep ever also creates its bookkeeping rows
        with CaptureQueriesContext(connection) as queries:
            result = sweep()
        assert result.opened == 0
        due_lookups = [q["sql"] for q in queries if 'FROM "certificates_certificate"' in q["sql"]]
        assert len(due_lookups) == 1  # what is due: one query
        counts.append(len(queries))
    assert counts[0] == counts[1]
