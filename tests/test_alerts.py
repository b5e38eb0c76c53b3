"""Expiry alerts (once per threshold, never skipped), the monthly status, and the OCSP revocation check."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest
from django.core import mail
from django.utils import timezone

from certificates.alerts import send_expiry_alerts, send_monthly_status
from certificates.choices import EventKind, LifecycleState, OrderState
from certificates.models import Certificate, Event, ExpiryAlert, Order
from certificates.revocation import check_all
from certificates.services import import_certificate_file

from . import pki
from .support.processes import running_smtp_server

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
    assert "The portal cannot renew it: The portal holds no private key" in message.body
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


def test_ocsp_check_blocks_what_the_ca_reports_revoked(renewable, simulator):
    good, revoked = renewable("15151515"), renewable("15151515")
    assert check_all() == 0
    simulator.cli("block", "--serial", revoked.serial_number, "--reason", "keyCompromise")
    assert check_all() == 1
    revoked.refresh_from_db()
    good.refresh_from_db()
    assert revoked.state == LifecycleState.BLOCKED and good.state == LifecycleState.ACTIVE
    event = Event.objects.get(certificate=revoked, kind=EventKind.BLOCKED)
    assert "reports it revoked (key_compromise)" in event.text
    assert check_all() == 0  # already blocked: nothing new


def test_subjects_are_plain_text_on_one_line_whatever_the_certificate_is_called(recipients):
    certificate("R&D <intern>\r\nBcc: x@evil.example\x07", 20.5)
    send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert message.subject == "[trustview] certificate expires in 20 days: R&D <intern> Bcc: x@evil.example"
