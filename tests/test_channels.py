"""Alert channels: Teams, Slack and a signed webhook receive the alerts the e-mails carry, delivered by a
Celery task each (run eagerly here) to a real HTTP receiver on loopback."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import alerts, channels
from certificates.models import AlertChannel, Certificate, ChannelMessage, Order, Organization
from certificates.services import import_certificate_file

from .conftest import SKAT_CVR, SYSTEM_2026, oces3
from .test_organisation_limits import limited_client

pytestmark = pytest.mark.django_db

BASE_URL = "https://trustview.example.dk"
SECRET = "a-shared-secret-of-32-characters!"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP receiver: records every POST and answers with the next scripted status per path
    (200 when the script is used up)."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            statuses = state.script.get(self.path, [])
            status = statuses.pop(0) if statuses else 200
            answer = b"ok" if status == 200 else b"no_service"
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def channel_settings(settings):  # type: ignore[no-untyped-def]
    from trustview.celery import app

    settings.TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK = True
    settings.TRUSTVIEW_BASE_URL = BASE_URL
    settings.TRUSTVIEW_RETRY_BASE_SECONDS = 0  # retries at once (eagerly they run at once anyway)
    settings.TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS = 5
    settings.TRUSTVIEW_ALERT_EMAILS = ["ops@example.dk"]
    app.conf.task_always_eager = True
    yield settings
    app.conf.task_always_eager = False


def make_channel(
    kind: str, url: str, organization: Organization | None = None, name: str = ""
) -> AlertChannel:
    channel = AlertChannel(name=name or kind, kind=kind, organization=organization)
    channels.configure(channel, url, SECRET if kind == "webhook" else None)
    channel.save()
    return channel


@pytest.fixture
def failed_order() -> Order:
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    return Order.objects.create(
        certificate=outcome.certificate,
        state="failed",
        requested_by_label="scheduler",
        last_error_code="renewal_not_enabled",
        last_error="Digst has not enabled renewal for this organisation.",
        completed_at=timezone.now(),
    )


def fail_renewal(order: Order, capture) -> None:  # type: ignore[no-untyped-def]
    with capture(execute=True):
        alerts.renewal_failed(order)


def test_a_renewal_failed_alert_reaches_teams_slack_and_a_signed_webhook(
    receiver, failed_order, django_capture_on_commit_callbacks, mailoutbox
):  # type: ignore[no-untyped-def]
    certificate = failed_order.certificate
    link = f"{BASE_URL}/certificates/{certificate.pk}/"
    make_channel("teams", receiver.url("/teams"), certificate.organization)
    make_channel("slack", receiver.url("/slack"))
    make_channel("webhook", receiver.url("/hook"))
    fail_renewal(failed_order, django_capture_on_commit_callbacks)

    (teams,) = receiver.to("/teams")
    card = teams.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    texts = " ".join(block["text"] for block in card["content"]["body"])
    assert "Renewal failed: Skatteministeriet - B2B gateway TSE TEST" in texts
    assert f"({link})" in texts and "Digst has not enabled renewal" in texts
    assert card["content"]["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "Open the certificate",
        "url": link,
    }

    (slack,) = receiver.to("/slack")
    message = slack.json()
    assert message["text"].startswith("Renewal failed: Skatteministeriet")
    mrkdwn = "\n".join(block["text"]["text"] for block in message["blocks"] if "text" in block)
    assert f"<{link}|Skatteministeriet - B2B gateway TSE TEST>" in mrkdwn

    (hook,) = receiver.to("/hook")
    payload = hook.json()
    assert payload["event"] == "renewal_failed" and payload["severity"] == "critical"
    (listed,) = payload["certificates"]
    assert listed["url"] == link and listed["cvr"] == SKAT_CVR and listed["id"] == certificate.pk
    # The signature, computed here independently: HMAC-SHA256 of "<timestamp>.<raw body>".
    timestamp = hook.headers["X-Trustview-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Trustview-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - timezone.now().timestamp()) < 60
    assert hook.headers["X-Trustview-Event"] == "renewal_failed"
    # The e-mail went as before.
    assert [m.to for m in mailoutbox] == [["ops@example.dk"]]
    assert set(ChannelMessage.objects.values_list("state", flat=True)) == {"sent"}


def test_a_server_error_is_retried_and_then_delivered(
    receiver, failed_order, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    receiver.script["/hook"] = [500, 503]
    channel = make_channel("webhook", receiver.url("/hook"))
    fail_renewal(failed_order, django_capture_on_commit_callbacks)
    assert len(receiver.to("/hook")) == 3
    message = ChannelMessage.objects.get()
    assert (message.state, message.attempts) == ("sent", 3)
    # Retries keep the delivery id, so a receiver can drop a duplicate.
    assert len({r.headers["X-Trustview-Delivery"] for r in receiver.to("/hook")}) == 1
    channel.refresh_from_db()
    assert not channel.failing and channel.last_success_at is not None


def test_a_failing_channel_does_not_stop_another_and_shows_as_failing(
    receiver, failed_order, django_capture_on_commit_callbacks, alice_client, caplog
):  # type: ignore[no-untyped-def]
    receiver.script["/gone/T0/B0/s3cr3t-path"] = [404]
    receiver.script["/busy"] = [503] * 10
    gone = make_channel("slack", receiver.url("/gone/T0/B0/s3cr3t-path"), name="Drift")
    busy = make_channel("webhook", receiver.url("/busy"), name="Pager")
    working = make_channel("teams", receiver.url("/ok"), name="Team")
    fail_renewal(failed_order, django_capture_on_commit_callbacks)

    assert len(receiver.to("/ok")) == 1
    assert len(receiver.to("/gone/T0/B0/s3cr3t-path")) == 1  # a 404 is not retried
    assert len(receiver.to("/busy")) == 8  # TRUSTVIEW_CHANNEL_ATTEMPTS, then it gives up
    states = dict(ChannelMessage.objects.values_list("channel__name", "state"))
    assert states == {"Drift": "failed", "Pager": "failed", "Team": "sent"}
    for channel in (gone, busy, working):
        channel.refresh_from_db()
    assert gone.failing and "HTTP 404" in gone.last_error and "no_service" in gone.last_error
    assert busy.failing and "HTTP 503" in busy.last_error and not working.failing

    page = alice_client.get(reverse("certificates:notifications")).content.decode()
    assert page.count("Failing") >= 2 and "HTTP 404" in page
    # The address is a secret: never on the page, in the error or in a log line.
    assert "s3cr3t" not in page and "s3cr3t" not in gone.last_error and "s3cr3t" not in caplog.text
    assert "s3cr3t" not in gone.url_encrypted and gone.url_hint.endswith("path")
    # /metrics tells monitoring the same.
    metrics = b"".join(alice_client.get("/metrics").streaming_content).decode()
    assert "trustview_alert_channels_failing 2.0" in metrics
    assert 'trustview_channel_messages_total{channel="slack",state="failed"} 1.0' in metrics
    assert 'trustview_channel_messages_total{channel="teams",state="sent"} 1.0' in metrics


def test_an_organisations_channel_hears_only_of_its_own_certificates(
    receiver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from .test_certificate_list import make_inventory

    make_inventory(12)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    Certificate.objects.all().update(not_after=timezone.now() + dt.timedelta(days=300))
    due = list(Certificate.objects.current().order_by("pk").values_list("pk", flat=True)[:4])
    Certificate.objects.filter(pk__in=due).update(not_after=timezone.now() + dt.timedelta(days=10))
    Certificate.objects.filter(pk__in=due[::2]).update(organization=theirs, cvr=theirs.cvr)
    make_channel("webhook", receiver.url("/ours"), ours)
    make_channel("webhook", receiver.url("/all"))
    with django_capture_on_commit_callbacks(execute=True):
        alerted = alerts.send_expiry_alerts()
    assert alerted > 0
    (ours_message,) = receiver.to("/ours")
    (all_message,) = receiver.to("/all")
    assert {c["cvr"] for c in ours_message.json()["certificates"]} == {ours.cvr}
    assert {c["cvr"] for c in all_message.json()["certificates"]} == {ours.cvr, theirs.cvr}
    assert len(all_message.json()["certificates"]) == alerted == 4


def test_an_administrator_sets_up_a_channel_and_sends_a_test_message(receiver, alice_client):  # type: ignore[no-untyped-def]
    url = reverse("certificates:channel-new")
    response = alice_client.post(
        url, {"name": "Drift", "kind": "webhook", "url": receiver.url("/hook/s3cr3t")}
    )
    assert response.status_code == 400 and "A webhook needs a signing secret." in response.content.decode()
    response = alice_client.post(
        url,
        {
            "name": "Drift",
            "kind": "webhook",
            "url": receiver.url("/hook/s3cr3t"),
            "secret": SECRET,
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    channel = AlertChannel.objects.get()
    assert (
        SECRET not in channel.secret_encrypted
        and channels.address_hint(receiver.url("/x/s3cr3t")) == channel.url_hint
    )
    page = alice_client.get(reverse("certificates:notifications")).content.decode()
    assert "Drift" in page and "/hook/s3cr3t" not in page and SECRET not in page

    response = alice_client.post(reverse("certificates:channel-test", args=[channel.pk]), follow=True)
    assert "A test message was delivered to “Drift”." in response.content.decode()
    (test,) = receiver.to("/hook/s3cr3t")
    assert test.json()["event"] == "test" and "alice" in test.json()["text"]

    receiver.script["/hook/s3cr3t"] = [401]
    response = alice_client.post(reverse("certificates:channel-test", args=[channel.pk]), follow=True)
    assert "was not delivered" in response.content.decode() and "HTTP 401" in response.content.decode()

    # Editing without a new address or secret keeps them.
    response = alice_client.post(
        reverse("certificates:channel-edit", args=[channel.pk]), {"name": "Drift 2", "kind": "webhook"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Drift 2" and not channel.enabled
    assert channels.vault.unseal_text(channel.secret_encrypted) == SECRET
    # The audit log says who added and changed it, never the address or the secret.
    from accounts.models import AuditEntry

    entries = AuditEntry.objects.filter(action="alert_channel_changed").order_by("pk")
    assert [(e.detail["change"], e.actor.username) for e in entries] == [
        ("added", "alice"),
        ("changed", "alice"),
    ]
    assert "s3cr3t" not in str([e.detail for e in entries]) and SECRET not in str([e.detail for e in entries])


def test_addresses_must_be_https(settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK = False
    for bad in ("http://127.0.0.1:9/x", "http://hooks.example.com/x", "ftp://x", "https://u:p@h/x", "x"):
        with pytest.raises(channels.ChannelAddressError):
            channels.check_address(bad)
    assert (
        channels.check_address(" https://hooks.slack.com/services/T/B/x ")
        == "https://hooks.slack.com/services/T/B/x"
    )
    settings.TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK = True
    assert channels.check_address("http://127.0.0.1:9/x")
    with pytest.raises(channels.ChannelAddressError):
        channels.check_address("http://10.0.0.1/x")


def test_retry_after_is_honoured_and_backoff_grows(settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_RETRY_BASE_SECONDS = 30
    settings.TRUSTVIEW_RETRY_CAP_SECONDS = 3600
    assert channels.backoff(0, retry_after=7) == 7
    assert channels.backoff(0, retry_after=99999) == 3600
    assert 15 <= channels.backoff(0) <= 30 and 120 <= channels.backoff(3) <= 240


def test_a_limited_administrator_manages_only_their_organisations_channels(django_user_model, receiver):  # type: ignore[no-untyped-def]
    ours = Organization.objects.create(cvr="11112222", name="Vores A/S")
    theirs = Organization.objects.create(cvr="33334444", name="Deres A/S")
    hidden = make_channel("slack", receiver.url("/theirs"), theirs, name="Deres kanal")
    portal_wide = make_channel("slack", receiver.url("/all"), name="Alle")
    client = limited_client(django_user_model, "Administrator", ours)
    page = client.get(reverse("certificates:notifications")).content.decode()
    assert "Deres kanal" not in page and "Alle" not in page
    for pk in (hidden.pk, portal_wide.pk):
        assert client.post(reverse("certificates:channel-test", args=[pk])).status_code == 404
        assert client.post(reverse("certificates:channel-delete", args=[pk])).status_code == 404
    # A channel for every organisation is not theirs to set up.
    response = client.post(
        reverse("certificates:channel-new"), {"name": "Alt", "kind": "slack", "url": receiver.url("/x")}
    )
    assert response.status_code == 400 and AlertChannel.objects.count() == 2
    assert receiver.requests == []


def test_the_sweep_sends_a_message_whose_task_was_lost_and_only_once(receiver, failed_order):  # type: ignore[no-untyped-def]
    from certificates import tasks

    make_channel("webhook", receiver.url("/hook"))
    # The broker was down when the alert was written: the message is in the database, no task is queued.
    alerts.renewal_failed(failed_order)  # on-commit callbacks are not run: nothing was handed to a worker
    message = ChannelMessage.objects.get()
    tasks.sweep()
    assert receiver.to("/hook") == []  # just written: its task may still be on its way
    ChannelMessage.objects.update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    tasks.sweep()
    tasks.sweep()
    assert len(receiver.to("/hook")) == 1
    message.refresh_from_db()
    assert message.state == "sent" and message.attempts == 1


def test_too_many_requests_waits_as_told_and_is_delivered(
    receiver, failed_order, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    receiver.script["/slack"] = [429]
    make_channel("slack", receiver.url("/slack"))
    fail_renewal(failed_order, django_capture_on_commit_callbacks)
    assert len(receiver.to("/slack")) == 2
    assert ChannelMessage.objects.get().state == "sent"


def test_the_monthly_status_and_a_stopped_scheduler_reach_the_channels(
    receiver, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from .test_certificate_list import make_inventory

    make_inventory(12)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    Certificate.objects.all().update(not_after=timezone.now() + dt.timedelta(days=300))
    soon = list(Certificate.objects.current().order_by("pk").values_list("pk", flat=True)[:3])
    Certificate.objects.filter(pk__in=soon).update(not_after=timezone.now() + dt.timedelta(days=20))
    Certificate.objects.filter(pk=soon[0]).update(organization=theirs, cvr=theirs.cvr)
    make_channel("slack", receiver.url("/ours"), ours)
    make_channel("webhook", receiver.url("/all"))
    with django_capture_on_commit_callbacks(execute=True):
        alerts.send_monthly_status()
        alerts.scheduler_stopped(None)
    (ours_status,) = receiver.to("/ours")
    assert "In the next 3 months 2 certificates expire" in ours_status.json()["text"]
    all_status, stopped = receiver.to("/all")
    assert (
        all_status.json()["event"] == "monthly_status"
        and "3 certificates expire" in all_status.json()["text"]
    )
    assert len(all_status.json()["certificates"]) == 3
    # The scheduler is the portal's business: only the channel for all organisations hears of it.
    assert stopped.json()["event"] == "scheduler_stopped" and stopped.json()["severity"] == "critical"
