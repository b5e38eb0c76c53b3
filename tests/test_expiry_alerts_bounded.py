"""Expiry alerts at any inventory size: a bounded e-mail (counts per threshold, the soonest by name, a
link to the rest), claims read and committed in chunks, each certificate alerted once across runs, and a
run stopped half-way that neither loses an alert nor sends one twice; chat and webhook messages bounded
the same way."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core import mail
from django.utils import timezone

from certificates import alerts, channels
from certificates.alerts import send_expiry_alerts
from certificates.choices import EventKind, LifecycleState
from certificates.models import (
    AlertChannel,
    Certificate,
    CertificateContact,
    ChannelMessage,
    Event,
    ExpiryAlert,
)
from certificates.services import import_certificate_file

from . import pki

pytestmark = pytest.mark.django_db
NOW = timezone.now()
CA = pki.make_ca("Bounded Alert Test CA")
BASE = "http://127.0.0.1:8130"


def certificates(**days_left: float) -> dict[str, Certificate]:
    """Certificates named by the keywords, each expiring that many days from NOW, imported as one bundle."""
    bundle = b"".join(
        pki.make_leaf(
            CA,
            pki.name(name),
            not_before=NOW - dt.timedelta(days=300),
            not_after=NOW + dt.timedelta(days=days),
        ).pem
        for name, days in days_left.items()
    )
    outcomes = import_certificate_file(bundle, actor="test")
    return {outcome.certificate.subject_cn: outcome.certificate for outcome in outcomes}


@pytest.fixture
def recipients(settings, monkeypatch):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS = [30, 14]
    settings.TRUSTVIEW_BASE_URL = BASE
    monkeypatch.setattr(alerts, "CLAIM_CHUNK", 2)  # several chunks from a handful of certificates
    return settings.TRUSTVIEW_ALERT_EMAILS


def three_due() -> list[str]:
    """Three certificates within 30 days, one of them within 14: two chunks of claims."""
    return list(certificates(due_5=5.5, due_20=20.5, due_28=28.5))


def alerted_names(message: mail.EmailMessage) -> list[str]:
    """The certificates an e-mail names, in its order."""
    return re.findall(r'The certificate "([^"]+)" expires', message.body)


def test_an_e_mail_about_more_certificates_than_it_lists_counts_them_and_links_the_rest(
    recipients, monkeypatch, alice_client
):
    monkeypatch.setattr(alerts, "EXPIRY_LIST_LIMIT", 3)
    made = certificates(
        due_5=5.5, due_10=10.5, due_20=20.5, due_22=22.5, due_25=25.5, due_28=28.5, renewed=12.5, later=40.5
    )
    due = [made[f"due_{days}"] for days in (5, 10, 20, 22, 25, 28)]
    renewed, later = made["renewed"], made["later"]
    Certificate.objects.filter(pk=renewed.pk).update(state=LifecycleState.SUPERSEDED)

    assert send_expiry_alerts(NOW) == 6
    (message,) = mail.outbox
    assert message.subject == "[trustview] Critical: 6 certificates expire soon, the first due_5 in 5 days"
    body = message.body
    assert body.startswith(
        "6 certificates came within an alert threshold of expiry, the most urgent first.\n"
        "  CRITICAL: 2 certificates within the 14-day alert threshold\n"
        "  4 certificates within the 30-day alert threshold\n"
        "The 3 most urgent are listed below.\n"
    )
    assert alerted_names(message) == ["due_5", "due_10", "due_20"]
    for shown in due[:3]:
        assert f"{BASE}{shown.get_absolute_url()}" in body
    for rest in due[3:]:
        assert rest.get_absolute_url() not in body
    assert "… and 3 more: see the certificate list filtered to those that expire within 30 days" in body
    link = re.search(rf"{re.escape(BASE)}(/certificates/\?\S+)", body)
    assert link is not None
    assert f'href="{html.escape(BASE + link.group(1))}"' in message.alternatives[0][0]
    assert (
        "<strong>Critical:</strong> 2 certificates within the 14-day alert threshold"
        in (message.alternatives[0][0])
    )

    # The link shows the certificates the e-mail did not list (and those it did), and none other.
    page = alice_client.get(link.group(1)).content.decode()
    for cert in due:
        assert cert.get_absolute_url() in page, cert.subject_cn
    assert renewed.get_absolute_url() not in page and later.get_absolute_url() not in page

    # Every certificate alerted is recorded, the unlisted ones too, each once.
    assert Event.objects.filter(kind=EventKind.ALERT_SENT).count() == 6
    assert ExpiryAlert.objects.filter(run="").count() == ExpiryAlert.objects.count() == 8  # two crossed 14


def test_each_certificate_is_alerted_once_across_runs_and_chunks(recipients):
    names = three_due()
    assert send_expiry_alerts(NOW) == 3  # two chunks of two
    (message,) = mail.outbox
    assert alerted_names(message) == names
    # Within the bound, the e-mail is what it always was: no counts, no link.
    assert message.body.startswith(
        "3 certificates came within an alert threshold of expiry, the most urgent first.\n\n"
        'CRITICAL: The certificate "due_5" expires in 5 days'
    )
    assert "more:" not in message.body and "alert threshold\n" not in message.body
    assert send_expiry_alerts(NOW) == 0
    # A week on, "due_20" crosses 14 days: that alone is sent, once.
    assert send_expiry_alerts(NOW + dt.timedelta(days=7)) == 1
    assert alerted_names(mail.outbox[1]) == ["due_20"]
    assert Event.objects.filter(kind=EventKind.ALERT_SENT).count() == 4
    assert not ExpiryAlert.objects.exclude(run="").exists()


class Stopped(Exception):
    pass


def stop_after_first_chunk(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The run fails right after its first chunk of claims was committed."""
    original = alerts._insert_claims

    def insert_then_stop(claims):  # type: ignore[no-untyped-def]
        original(claims)
        raise Stopped

    monkeypatch.setattr(alerts, "_insert_claims", insert_then_stop)


def test_a_run_failing_before_it_sends_gives_its_claims_back_and_after_it_sent_keeps_them(
    recipients, monkeypatch
):
    """Mark, then send, then record. A run failing after a chunk of claims sent nothing, so it leaves
    nothing marked (else those alerts would be lost). A run failing after the mail server took its e-mail
    keeps its claims as sent, so no later run sends it again, not even one after ABANDONED_CLAIM_AFTER
    (which takes over only the claims of a killed worker: the one window in which an alert can be sent
    twice)."""
    names = three_due()
    stop_after_first_chunk(monkeypatch)
    with pytest.raises(Stopped):
        send_expiry_alerts(NOW)
    assert not mail.outbox
    assert not ExpiryAlert.objects.exists() and not Event.objects.filter(kind=EventKind.ALERT_SENT).exists()
    monkeypatch.undo()
    monkeypatch.setattr(alerts, "CLAIM_CHUNK", 2)

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Stopped

    monkeypatch.setattr(alerts, "_record_expiry_alerts", fail)
    with pytest.raises(Stopped):
        send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert alerted_names(message) == names  # every one of them, though the first run had claimed some
    monkeypatch.undo()
    assert send_expiry_alerts(NOW + dt.timedelta(minutes=30)) == 0
    assert send_expiry_alerts(NOW + dt.timedelta(days=1)) == 0
    assert len(mail.outbox) == 1
    assert not ExpiryAlert.objects.exclude(run="").exists()


def test_a_run_sending_for_over_an_hour_keeps_its_claims_from_a_run_started_meanwhile(
    recipients, monkeypatch, time_machine
):
    """A slow mail server (each e-mail up to EMAIL_TIMEOUT), or Redis handing the task to a second worker
    after an hour: the run still sending renews its claims before each e-mail, so a run started an hour
    later takes none of them over, and each certificate is e-mailed once."""
    names = three_due()
    for name in ("due_5", "due_28"):  # two more e-mails after the recipients' one
        CertificateContact.objects.create(
            certificate=Certificate.objects.get(subject_cn=name), email=f"{name}@x.dk"
        )
    time_machine.move_to(timezone.now(), tick=False)
    original, sends, later = alerts._send_quietly, [], []

    def slow(template, context, to):  # type: ignore[no-untyped-def]
        time_machine.shift(dt.timedelta(minutes=31))  # each e-mail takes half an hour
        sends.append(to)
        if len(sends) == 2:  # over an hour in: another run starts
            later.append(send_expiry_alerts(NOW + dt.timedelta(minutes=63)))
        return original(template, context, to)

    monkeypatch.setattr(alerts, "_send_quietly", slow)
    assert send_expiry_alerts(NOW) == 3
    assert later == [0] and len(sends) == 3
    (portal,) = [message for message in mail.outbox if message.to == recipients]
    assert alerted_names(portal) == names and len(mail.outbox) == 3


def test_a_killed_run_s_claims_are_sent_once_by_a_run_after_it_could_still_be_running(
    recipients, monkeypatch
):
    """A worker killed after a chunk of claims (nothing of the run after the fault happens): a run
    meanwhile leaves those claims to it, as it would to a run still sending; the first run after
    ABANDONED_CLAIM_AFTER takes them over. Each certificate is in exactly one e-mail."""
    names = three_due()
    stop_after_first_chunk(monkeypatch)
    monkeypatch.setattr(alerts, "_give_up", lambda run: None)  # killed: no clean-up ran
    with pytest.raises(Stopped):
        send_expiry_alerts(NOW)
    assert not mail.outbox and ExpiryAlert.objects.exclude(run="").exists()
    monkeypatch.undo()
    monkeypatch.setattr(alerts, "CLAIM_CHUNK", 2)

    assert send_expiry_alerts(NOW + dt.timedelta(minutes=30)) == 1  # the one the killed run had not claimed
    assert send_expiry_alerts(NOW + alerts.ABANDONED_CLAIM_AFTER + dt.timedelta(minutes=1)) == 2
    told = [name for message in mail.outbox for name in alerted_names(message)]
    assert sorted(told) == sorted(names)
    assert Event.objects.filter(kind=EventKind.ALERT_SENT).count() == 3
    assert not ExpiryAlert.objects.exclude(run="").exists()


def test_a_chat_message_names_the_soonest_and_counts_them_all(recipients, monkeypatch):
    monkeypatch.setattr(alerts, "CHANNEL_LIST_LIMIT", 2)
    AlertChannel.objects.create(name="chat", kind="slack", url_encrypted="", url_hint="https://hooks…")
    three_due()
    assert send_expiry_alerts(NOW) == 3
    (message,) = ChannelMessage.objects.all()
    content = message.content
    assert content["title"] == "Certificates expiring: 3" and content["severity"] == "critical"
    assert [c["common_name"] for c in content["certificates"]] == ["due_5", "due_20"]
    assert content["certificates_total"] == 3
    assert "…and 1 more." in channels.slack_message(content)["blocks"][1]["text"]["text"]
