"""Expiry alerts (once per threshold, never skipped), the monthly status, and the OCSP revocation check."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
from email import policy

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates import alerts, tasks
from certificates.alerts import (
    renewal_failed,
    renewal_keeps_failing,
    renewals_recovered,
    send_expiry_alerts,
    send_lapse_alerts,
    send_late_renewal_alerts,
    send_monthly_status,
)
from certificates.choices import EventKind, LifecycleState, OrderState
from certificates.models import Certificate, Event, ExpiryAlert, Incident, Order
from certificates.revocation import check_all
from certificates.services import import_certificate_file, set_contacts

from . import pki
from .support.processes import free_port, running_smtp_server

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def certificate(name: str, days_left: float) -> Certificate:
    leaf = pki.make_leaf(
        CA,
        pki.name(name),
        not_before=NOW - dt.timedelta(days=300),
        not_after=NOW + dt.timedelta(days=days_left),
    )
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    return outcome.certificate


CA = pki.make_ca("Alert Test CA")


@pytest.fixture
def recipients(settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk", "ops@example.dk"]
    settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS = [30, 14]
    return settings.TRUSTVIEW_ALERT_EMAILS


def subjects() -> list[str]:
    return sorted(message.subject for message in mail.outbox)


def test_each_threshold_is_alerted_once_when_crossed(recipients):
    in_20 = certificate("twenty", 20.5)
    certificate("forty", 40.5)
    assert send_expiry_alerts(NOW) == 1
    assert subjects() == ["[trustview] certificate expires in 20 days: twenty"]
    assert mail.outbox[0].to == recipients
    assert send_expiry_alerts(NOW) == 0  # never twice
    assert send_expiry_alerts(NOW + dt.timedelta(days=2)) == 0  # 18 days left: no new threshold crossed
    assert send_expiry_alerts(NOW + dt.timedelta(days=7)) == 1  # 13 days left: the critical one
    assert subjects()[0].startswith("[trustview] Critical: certificate expires in 13 days: twenty")
    assert sorted(ExpiryAlert.objects.filter(certificate=in_20).values_list("threshold_days", flat=True)) == [
        14,
        30,
    ]
    assert Event.objects.filter(certificate=in_20, kind=EventKind.ALERT_SENT).count() == 2


def test_a_missed_run_still_alerts_once_with_the_most_urgent_threshold(recipients):
    late = certificate("late", 5.5)  # both thresholds crossed while the scheduler was down
    assert send_expiry_alerts(NOW) == 1
    (message,) = mail.outbox
    assert message.subject == "[trustview] Critical: certificate expires in 5 days: late"
    assert "CRITICAL" in message.body and late.get_absolute_url() in message.body
    assert sorted(ExpiryAlert.objects.values_list("threshold_days", flat=True)) == [14, 30]
    assert send_expiry_alerts(NOW) == 0


def test_superseded_blocked_and_expired_certificates_get_no_expiry_alert(recipients):
    for name, state in [("superseded", LifecycleState.SUPERSEDED), ("blocked", LifecycleState.BLOCKED)]:
        Certificate.objects.filter(pk=certificate(name, 10).pk).update(state=state)
    certificate("expired", -1)
    assert send_expiry_alerts(NOW) == 0


def test_the_alert_says_what_to_do(recipients):
    monitor_only = certificate("monitor", 10.5)
    send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert "What to do:\n  The portal holds no private key" in message.body
    html = message.alternatives[0][0]
    assert monitor_only.get_absolute_url() in html and "<strong>monitor</strong>" in html


def test_nobody_to_tell_is_logged_and_nothing_is_recorded(settings, caplog):
    settings.TRUSTVIEW_ALERT_EMAILS = []
    certificate("unwatched", 3)
    assert send_expiry_alerts(NOW) == 0
    assert "nobody is set to receive them" in caplog.text
    assert not ExpiryAlert.objects.exists()


def test_administrators_with_an_address_receive_alerts_by_default(settings, admin_user):
    settings.TRUSTVIEW_ALERT_EMAILS = []
    certificate("default recipients", 3)
    send_expiry_alerts(NOW)
    assert mail.outbox[0].to == [admin_user.email]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):  # type: ignore[no-untyped-def]
    """A real SMTP server on loopback; the portal sends to it with Django's SMTP backend."""
    inbox = Inbox()
    with running_smtp_server(inbox) as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield inbox


def test_alerts_arrive_once_per_threshold_through_a_real_smtp_server(recipients, smtp_server):
    certificate("smtp", 20.5)
    for day in range(0, 10):  # the daily job, ten days running
        send_expiry_alerts(NOW + dt.timedelta(days=day))
    assert [m["Subject"] for m in smtp_server.messages] == [
        "[trustview] certificate expires in 20 days: smtp",
        "[trustview] Critical: certificate expires in 13 days: smtp",
    ]
    first = smtp_server.messages[0]
    assert first["To"] == "pki@example.dk, ops@example.dk"
    assert first.get_body(("plain",)).get_content().startswith('The certificate "smtp" expires in 20 days')
    assert "<strong>smtp</strong>" in first.get_body(("html",)).get_content()


def test_monthly_status_lists_what_expires_and_what_failed(recipients):
    soon, later = certificate("soon", 12), certificate("later", 70)
    certificate("far", 200)
    Order.objects.create(
        certificate=soon,
        state=OrderState.FAILED,
        requested_by_label="scheduler",
        last_error="MitID Erhverv has not enabled renewal for this organisation.",
        completed_at=NOW,
    )
    assert send_monthly_status(NOW)
    (message,) = mail.outbox
    assert (
        message.subject
        == "[trustview] Monthly status: 2 certificates expire in the next 3 months, 1 renewal failed"
    )
    assert "soon" in message.body and "later" in message.body and "far" not in message.body
    assert "has not enabled renewal" in message.body
    assert later.get_absolute_url() in message.alternatives[0][0]


def test_revocation_check_blocks_what_the_ca_reports_revoked(renewable, simulator, settings):
    """The simulator's certificates name its CRL (read once per run) and its OCSP responder."""
    settings.TRUSTVIEW_REVOCATION_RECHECK_SECONDS = 0  # every run checks every certificate again
    good, revoked = renewable("15151515"), renewable("15151515")
    assert check_all() == 0
    simulator.cli("block", "--serial", revoked.serial_number, "--reason", "keyCompromise")
    assert check_all() == 1
    revoked.refresh_from_db()
    good.refresh_from_db()
    assert revoked.state == LifecycleState.BLOCKED and good.state == LifecycleState.ACTIVE
    event = Event.objects.get(certificate=revoked, kind=EventKind.BLOCKED)
    assert "revocation list (CRL) reports it revoked (key_compromise)" in event.text
    assert check_all() == 0  # already blocked: nothing new


def test_subjects_are_plain_text_on_one_line_whatever_the_certificate_is_called(recipients):
    certificate("R&D <intern>\r\nBcc: x@evil.example\x07", 20.5)
    send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert message.subject == "[trustview] certificate expires in 20 days: R&D <intern> Bcc: x@evil.example"


# --- digests, claims, contacts ---------------------------------------------------------------------


def test_three_certificates_crossing_a_threshold_make_one_e_mail_listing_all_three(recipients, settings):
    settings.TRUSTVIEW_BASE_URL = "http://127.0.0.1:8130"
    later, soonest, middle = (
        certificate("later", 25.5),
        certificate("soonest", 5.5),
        certificate("middle", 20.5),
    )
    assert send_expiry_alerts(NOW) == 3
    (message,) = mail.outbox
    assert message.to == recipients
    assert message.subject == "[trustview] Critical: 3 certificates expire soon, the first soonest in 5 days"
    body = message.body
    assert body.startswith("3 certificates came within an alert threshold of expiry, the most urgent first.")
    assert body.index('"soonest"') < body.index('"middle"') < body.index('"later"')
    for cert in (later, soonest, middle):
        assert f"http://127.0.0.1:8130{cert.get_absolute_url()}" in body
        assert f'href="http://127.0.0.1:8130{cert.get_absolute_url()}"' in message.alternatives[0][0]
    assert ExpiryAlert.objects.count() == 4  # soonest crossed 30 and 14; the others 30
    assert Event.objects.filter(kind=EventKind.ALERT_SENT).count() == 3
    assert send_expiry_alerts(NOW) == 0 and len(mail.outbox) == 1


def test_expiry_alerts_read_no_row_per_certificate(recipients):
    """The e-mails say each certificate's situation: read with the list, not asked per certificate (that
    made the first run over 100,000 certificates, 2,700 of them within 30 days, take minutes)."""

    def reads(count: int) -> int:
        ExpiryAlert.objects.all().delete()
        Certificate.objects.all().delete()
        for index in range(count):
            certificate(f"due {index}", 20.5)
        with CaptureQueriesContext(connection) as queries:
            assert send_expiry_alerts(NOW) == count
        return sum(q["sql"].startswith("SELECT") for q in queries.captured_queries)

    assert reads(1) == reads(3)


def test_a_second_run_at_the_same_time_sends_nothing(recipients, monkeypatch):
    """Two runs that both found the same certificates due (a redelivered task beside the original): the
    second run's query ran before the first run claimed anything, and it still sends nothing."""
    certificate("one", 20.5)
    certificate("two", 10.5)
    original = alerts._insert_claims
    state = {"other_run": False}

    def claim_after_the_other_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not state["other_run"]:
            state["other_run"] = True
            assert send_expiry_alerts(NOW) == 2  # the other run, from start to end, in between
        return original(*args, **kwargs)

    monkeypatch.setattr(alerts, "_insert_claims", claim_after_the_other_run)
    assert send_expiry_alerts(NOW) == 0
    assert len(mail.outbox) == 1
    assert ExpiryAlert.objects.count() == 3
    assert Event.objects.filter(kind=EventKind.ALERT_SENT).count() == 2


def test_when_the_mail_server_fails_the_claims_are_given_up_and_the_next_run_sends(recipients, monkeypatch):
    certificate("retry", 20.5)

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(alerts, "send", refuse)
    assert send_expiry_alerts(NOW) == 0
    assert not ExpiryAlert.objects.exists()
    monkeypatch.undo()
    assert send_expiry_alerts(NOW) == 1 and len(mail.outbox) == 1


def test_certificate_contacts_get_a_digest_of_their_own_certificates(recipients):
    mine, theirs = certificate("team cert", 20.5), certificate("other cert", 10.5)
    set_contacts(mine, ["team@example.dk", "pki@example.dk"], "test")
    assert send_expiry_alerts(NOW) == 2
    by_recipient = {tuple(m.to): m for m in mail.outbox}
    assert set(by_recipient) == {tuple(recipients), ("team@example.dk",)}  # pki@ is a recipient already
    team = by_recipient[("team@example.dk",)]
    assert "team cert" in team.body and "other cert" not in team.body
    assert (
        "team cert" in by_recipient[tuple(recipients)].body
        and "other cert" in by_recipient[tuple(recipients)].body
    )
    event = Event.objects.get(certificate=mine, kind=EventKind.ALERT_SENT)
    assert event.detail["recipients"] == ["pki@example.dk", "ops@example.dk", "team@example.dk"]
    assert [a.recipients for a in ExpiryAlert.objects.filter(certificate=theirs)] == [recipients, recipients]


# --- lapses and late renewals ----------------------------------------------------------------------


def test_a_lapse_gives_one_e_mail_and_one_history_entry(recipients, settings):
    settings.TRUSTVIEW_BASE_URL = "http://127.0.0.1:8130"
    lapsing = certificate("lapsing", 1)
    certificate("imported expired", -3)  # expired before the portal knew it: not a lapse it watched
    after = NOW + dt.timedelta(days=2)
    assert send_lapse_alerts(after) == 1
    (message,) = mail.outbox
    assert message.subject == "[trustview] Expired without a renewal: lapsing"
    assert "expired on" in message.body and "cannot be renewed" in message.body
    assert "Renew now" not in message.body
    assert f"http://127.0.0.1:8130{lapsing.get_absolute_url()}" in message.body
    (event,) = Event.objects.filter(certificate=lapsing, kind=EventKind.LAPSED)
    assert (
        event.text == "Expired without a renewal." and event.get_kind_display() == "Expired without a renewal"
    )
    assert send_lapse_alerts(after) == 0 and send_lapse_alerts(after + dt.timedelta(hours=1)) == 0
    assert len(mail.outbox) == 1
    assert Certificate.objects.needs_attention(after).filter(pk=lapsing.pk).exists()


def test_a_lapse_is_recorded_even_when_nobody_receives_alerts(settings, caplog):
    settings.TRUSTVIEW_ALERT_EMAILS = []
    lapsing = certificate("unheard", 1)
    assert send_lapse_alerts(NOW + dt.timedelta(days=2)) == 1
    assert Event.objects.filter(certificate=lapsing, kind=EventKind.LAPSED).count() == 1
    assert "nobody is set to receive alerts" in caplog.text
    assert not mail.outbox


def test_the_sweep_task_reports_a_lapse(recipients):
    now = timezone.now()
    leaf = pki.make_leaf(
        CA, pki.name("swept"), not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(seconds=30)
    )
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    with time_machine.travel(now + dt.timedelta(minutes=1), tick=False):
        tasks.sweep()
        tasks.sweep()
    assert [m.subject for m in mail.outbox] == ["[trustview] Expired without a renewal: swept"]
    assert Event.objects.filter(certificate=outcome.certificate, kind=EventKind.LAPSED).count() == 1


def test_a_late_renewal_alerts_once_with_what_to_do(recipients, settings):
    settings.TRUSTVIEW_RENEWAL_LATE_HOURS = 24
    late = certificate("late renewal", 10.5)  # due 30 days before expiry: 19.5 days ago
    Certificate.objects.filter(pk=late.pk).update(private_key_encrypted="held")
    on_time = certificate("not due", 100)
    Certificate.objects.filter(pk=on_time.pk).update(private_key_encrypted="held")
    certificate("monitor only", 10.5)  # the portal does not renew it: the expiry alerts cover it
    Order.objects.create(
        certificate=late,
        state=OrderState.IN_PROGRESS,
        attempts=7,
        requested_by_label="scheduler",
        last_error="MitID Erhverv did not answer in time.",
    )
    assert send_late_renewal_alerts(NOW) == 1
    (message,) = mail.outbox
    assert message.subject == "[trustview] Renewal late: late renewal"
    assert "was due for renewal on" in message.body
    assert "The renewal keeps failing (MitID Erhverv did not answer in time.)" in message.body
    assert send_late_renewal_alerts(NOW + dt.timedelta(days=1)) == 0 and len(mail.outbox) == 1
    assert Event.objects.filter(certificate=late, kind=EventKind.ALERT_SENT).count() == 1


def test_a_certificate_too_short_lived_for_the_sweep_is_warned_about_at_import(alice_client, settings):
    settings.TRUSTVIEW_SWEEP_SECONDS = 60
    now = timezone.now()
    leaf = pki.make_leaf(
        CA,
        pki.name("blink"),
        not_before=now - dt.timedelta(seconds=10),
        not_after=now + dt.timedelta(seconds=80),
    )
    response = alice_client.post(
        reverse("certificates:import"),
        {"file": SimpleUploadedFile("blink.pem", leaf.pem), "password": ""},
        follow=True,
    )
    page = response.content.decode()
    assert "is shorter than the interval between renewal sweeps (60 seconds)" in page
    (event,) = Event.objects.filter(certificate__subject_cn="blink", kind=EventKind.WARNING)
    assert "the portal may not renew it in time" in event.text
    assert not Event.objects.filter(certificate__subject_cn="twenty", kind=EventKind.WARNING).exists()


# --- renewal failures and outages ------------------------------------------------------------------


def failing_order(cert: Certificate, attempts: int = 5) -> Order:
    return Order.objects.create(
        certificate=cert,
        state=OrderState.IN_PROGRESS,
        attempts=attempts,
        requested_by_label="scheduler",
        last_error="MitID Erhverv is temporarily unavailable.",
    )


def test_a_ca_outage_is_one_e_mail_when_it_starts_and_one_when_it_ends(recipients):
    orders = [failing_order(certificate(f"outage {i}", 10 + i)) for i in range(4)]
    for order in orders:  # each order reaches its alert threshold in turn, some twice (two workers)
        renewal_keeps_failing(order)
    renewal_keeps_failing(orders[0])
    (started,) = mail.outbox
    assert started.subject == "[trustview] Renewals keep failing: 4 certificates affected"
    assert all(f"outage {i}" in started.body for i in range(4))
    incident = Incident.objects.get()
    assert incident.closed_at is None and incident.certificates.count() == 4
    assert renewals_recovered() is True
    assert renewals_recovered() is False  # closed once
    assert [m.subject for m in mail.outbox][1:] == ["[trustview] Renewals succeed again"]
    assert "outage 3: renewal in progress" in mail.outbox[1].body
    renewal_keeps_failing(failing_order(certificate("next outage", 12)))  # a new outage: a new e-mail
    assert len(mail.outbox) == 3 and Incident.objects.filter(closed_at=None).count() == 1


def test_a_renewal_whose_closing_of_the_outage_was_lost_is_announced_by_the_next_sweep(recipients):
    # The database restarted between the renewal's commit and its closing of the outage: the sweep sees the
    # renewal and says once that renewals succeed again.
    orders = [failing_order(certificate(f"lost close {i}", 10 + i)) for i in range(2)]
    renewal_keeps_failing(orders[0])
    assert alerts.renewal_outage_over() is False  # still failing, nothing succeeded
    Order.objects.filter(pk=orders[0].pk).update(attempts=0)  # the CA took it and is working on it
    assert alerts.renewal_outage_over() is False  # not over until one is renewed
    Order.objects.filter(pk=orders[1].pk).update(state=OrderState.ISSUED, completed_at=timezone.now())
    alerts.after_sweep()
    alerts.after_sweep()
    assert [m.subject for m in mail.outbox] == [
        "[trustview] Renewals keep failing: 2 certificates affected",
        "[trustview] Renewals succeed again",
    ]
    assert not Incident.objects.filter(closed_at=None).exists()


@contextlib.contextmanager
def mail_server_down(settings):  # type: ignore[no-untyped-def]
    """Django's SMTP backend, pointed at a loopback port where nothing listens."""
    backend = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    yield
    settings.EMAIL_BACKEND = backend


def test_when_the_mail_server_fails_the_outage_stays_open_and_the_next_sweep_says_it_is_over(
    recipients, settings
):
    order = failing_order(certificate("told later", 10))
    renewal_keeps_failing(order)
    with mail_server_down(settings):
        assert renewals_recovered() is False
    assert Incident.objects.get().closed_at is None  # nobody heard: open again
    Order.objects.filter(pk=order.pk).update(state=OrderState.ISSUED, completed_at=timezone.now())
    alerts.after_sweep()
    assert [m.subject for m in mail.outbox][1:] == ["[trustview] Renewals succeed again"]
    assert "told later: renewed" not in mail.outbox[1].body  # no successor stored in this test
    assert Incident.objects.get().closed_at is not None


def test_an_outage_whose_orders_all_ended_without_a_success_closes_quietly_so_the_next_is_told(recipients):
    order = failing_order(certificate("gave up", 10))
    renewal_keeps_failing(order)
    Order.objects.filter(pk=order.pk).update(state=OrderState.FAILED, completed_at=timezone.now())
    assert alerts.renewal_outage_over() is True
    assert len(mail.outbox) == 1  # no "succeed again": nothing did
    renewal_keeps_failing(failing_order(certificate("next time", 12)))
    (next_outage,) = mail.outbox[1:]
    assert next_outage.subject == "[trustview] Renewals keep failing: 1 certificate affected"


def test_an_outage_stays_open_while_any_renewal_keeps_failing_not_only_its_first_ones(recipients):
    first = failing_order(certificate("first", 10))
    renewal_keeps_failing(first)
    Order.objects.filter(pk=first.pk).update(state=OrderState.FAILED, completed_at=timezone.now())
    failing_order(certificate("failing since", 11), attempts=1)  # not yet told of, same outage
    assert alerts.renewal_outage_over() is False
    assert Incident.objects.get().closed_at is None


def test_a_failure_that_joins_the_outage_as_the_sweep_closes_it_keeps_it_open(recipients, monkeypatch):
    ended = failing_order(certificate("ended", 10))
    renewal_keeps_failing(ended)
    Order.objects.filter(pk=ended.pk).update(state=OrderState.FAILED, completed_at=timezone.now())
    late = failing_order(certificate("late", 11))
    close = alerts._close_incident

    def join_first(*args):  # type: ignore[no-untyped-def]
        renewal_keeps_failing(late)  # between the sweep's look at the orders and its closing
        return close(*args)

    monkeypatch.setattr(alerts, "_close_incident", join_first)
    assert alerts.renewal_outage_over() is False
    incident = Incident.objects.get()
    assert incident.closed_at is None and incident.certificates.filter(subject_cn="late").exists()
    assert len(mail.outbox) == 1  # the late failure is part of the outage already told


def test_the_scheduler_running_again_is_told_after_the_mail_server_comes_back(recipients, settings):
    assert alerts.scheduler_stopped(None, noticed_by="monitor") is True
    with mail_server_down(settings):
        assert alerts.scheduler_running() is False
    assert alerts.scheduler_running() is True and alerts.scheduler_running() is False
    assert [m.subject for m in mail.outbox][1:] == ["[trustview] The scheduler runs again"]


def test_renewal_failed_after_expiry_does_not_say_renew_now(recipients):
    expired = certificate("gone", -1)
    order = Order.objects.create(
        certificate=expired,
        state=OrderState.FAILED,
        requested_by_label="scheduler",
        last_error="The certificate has expired.",
        completed_at=NOW,
    )
    renewal_failed(order)
    (message,) = mail.outbox
    assert "Renew now" not in message.body and "Renew now" not in message.alternatives[0][0]
    assert "The certificate expired on" in message.body
    assert "order a new certificate" in message.body
    current = certificate("still valid", 20)
    # One the portal can renew (a key, an OCES certificate): the e-mail says to click Renew now...
    Certificate.objects.filter(pk=current.pk).update(
        private_key_encrypted="held", oces_type="system", environment="test"
    )
    current.refresh_from_db()
    failed = dict(state=OrderState.FAILED, requested_by_label="x", completed_at=NOW)
    renewal_failed(Order.objects.create(certificate=current, **failed))
    assert "Renew now" in mail.outbox[1].body and "The certificate expires on" in mail.outbox[1].body
    # ...and for one it cannot (monitor only), it says why instead, as the certificate's page does.
    monitored = certificate("monitored", 20)
    renewal_failed(Order.objects.create(certificate=monitored, **failed))
    assert "Renew now" not in mail.outbox[2].body and "holds no private key" in mail.outbox[2].body


def test_monthly_status_names_the_lapsed_certificates_and_bounds_its_lists(recipients, monkeypatch):
    monkeypatch.setattr(alerts, "MONTHLY_LIST_LIMIT", 2)
    for i in range(3):
        certificate(f"upcoming {i}", 10 + i)
    lapsed = certificate("lapsed last week", 0.5)
    assert send_monthly_status(NOW + dt.timedelta(days=7))
    (message,) = mail.outbox
    assert message.subject == (
        "[trustview] Monthly status: 3 certificates expire in the next 3 months, 1 expired without a renewal"
    )
    assert "upcoming 0" in message.body and "upcoming 1" in message.body and "upcoming 2" not in message.body
    assert "… and 1 more: see the certificate list." in message.body
    assert "Expired in the last month without a renewal:" in message.body
    assert "lapsed last week" in message.body and lapsed.get_absolute_url() in message.alternatives[0][0]
