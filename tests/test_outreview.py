"""Hostile review of the features that make the server reach out to addresses users type: TLS endpoint
monitoring and the alert channels (SSRF, forged certificates, scan cost)."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import channels
from certificates.choices import ChannelKind
from certificates.models import AlertChannel, Certificate, Organization
from certificates.trust import TrustStore, fingerprint
from endpoints import scanner, services
from endpoints.models import Endpoint, Scan

from .pki import make_ca, make_leaf, oces3_subject
from .test_organisation_limits import limited_client

pytestmark = pytest.mark.django_db


def test_a_served_certificate_that_no_trusted_ca_vouches_for_cannot_plant_itself_in_another_organisation(
    django_user_model,
):  # type: ignore[no-untyped-def]
    ours = Organization.objects.create(cvr="11111111", name="Vores")
    theirs = Organization.objects.create(cvr="22222222", name="Deres")
    rogue = make_ca("Rogue CA")
    forged = make_leaf(rogue, oces3_subject("Deres lønsystem", theirs.cvr, uuid.uuid4()), san=["x.example"])
    unknown = make_leaf(rogue, oces3_subject("Ny", "33333333", uuid.uuid4()), san=["x.example"])
    endpoint = Endpoint.objects.create(organization=ours, host="x.example", port=443)
    store = TrustStore.load()
    for leaf in (forged, unknown):
        observation = scanner.Observation(address="192.0.2.1", served=[leaf.certificate])
        scan = services.record(endpoint, observation, store, timezone.now())
        assert scan.subject_cn and scan.chain_verified is False  # what was served is still reported
    assert not Certificate.objects.filter(organization=theirs).exists()
    assert not Organization.objects.filter(cvr="33333333").exists()
    assert not Certificate.objects.filter(fingerprint_sha256=fingerprint(forged.certificate)).exists()


def test_scan_now_cannot_be_fired_again_and_again(django_user_model):  # type: ignore[no-untyped-def]
    ours = Organization.objects.create(cvr="11111111", name="Vores")
    client = limited_client(django_user_model, "Operator", ours)
    # A blocked address: the scan ends before any connection, so the test touches no network.
    endpoint = Endpoint.objects.create(organization=ours, host="169.254.169.254", port=443)
    url = reverse("endpoints:scan", args=[endpoint.pk])
    for _ in range(3):
        assert client.post(url).status_code == 302
    assert Scan.objects.filter(endpoint=endpoint).count() == 1
    answer = client.post(f"/api/v1/endpoints/{endpoint.pk}/scan/")
    assert answer.status_code == 429 and "again" in answer.json()["detail"]
    assert Scan.objects.filter(endpoint=endpoint).count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_a_channel_address_in_a_blocked_network_is_refused(url: str) -> None:
    with pytest.raises(channels.ChannelAddressError, match="may not"):
        channels.check_address(url)


def test_a_channel_name_resolving_into_a_blocked_network_is_not_posted_to(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    channel = AlertChannel(kind=ChannelKind.WEBHOOK, name="hook")
    channels.configure(channel, "https://metadata.example/hook", "s3cret-value")
    channel.save()
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 443))],
    )

    def no_post(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("posted to a blocked address")

    monkeypatch.setattr(channels.requests, "post", no_post)
    with pytest.raises(channels.Permanent, match="may not") as failure:
        channels.post(channel, {"event": "test"}, "d1")
    assert "s3cret" not in str(failure.value) and "/hook" not in str(failure.value)


def test_a_receiver_trickling_its_answer_does_not_hold_the_delivery(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK = True
    settings.TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS = 0.3
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100000\r\n\r\nslow")
            while not stop.is_set():
                try:
                    connection.sendall(b"x")
                except OSError:
                    return
                stop.wait(0.05)  # well within the read timeout: only a deadline over the whole answer helps

    threading.Thread(target=trickle, daemon=True).start()
    channel = AlertChannel(kind=ChannelKind.SLACK, name="slow")
    channels.configure(channel, f"http://127.0.0.1:{port}/hook", None)
    outcome: list[BaseException] = []

    def deliver() -> None:
        try:
            channels.post(channel, {"title": "t", "text": "x", "url": "u", "certificates": []}, "d")
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=deliver, daemon=True)
    worker.start()
    worker.join(timeout=5)  # a hang guard, far beyond the deadline: without one it runs for minutes
    stop.set()
    server.close()
    assert not worker.is_alive(), "the delivery was still reading the trickled answer"
    assert len(outcome) == 1 and isinstance(outcome[0], channels.Permanent) and "400" in str(outcome[0])


def test_a_server_trickling_its_starttls_greeting_does_not_hold_the_scan(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_ENDPOINT_HANDSHAKE_TIMEOUT_SECONDS = 0.3
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = server.accept()
        with connection:
            while not stop.is_set():
                try:
                    connection.sendall(b"2")  # a greeting that never ends its line
                except OSError:
                    return
                stop.wait(0.05)

    threading.Thread(target=trickle, daemon=True).start()
    observations: list[scanner.Observation] = []
    worker = threading.Thread(
        target=lambda: observations.append(scanner.scan(scanner.Target("127.0.0.1", port, "", "smtp"))),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=5)  # a hang guard: without a deadline this scan reads for minutes
    stop.set()
    server.close()
    assert not worker.is_alive(), "the scan was still reading the trickled greeting"
    assert observations[0].error is not None and observations[0].error.code == "timeout"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 (RFC 6052) of 169.254.169.254
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::ffff:0.0.0.0",
    ],
)
def test_ipv6_forms_that_carry_a_blocked_ipv4_address_are_blocked(address: str) -> None:
    with pytest.raises(services.EndpointInputError, match="may not reach"):
        services.clean_spec(address, "443", "tls", "")
    with pytest.raises(channels.ChannelAddressError, match="may not"):
        channels.check_address(f"https://[{address}]/hook")


def test_deleting_an_endpoint_leaves_an_audit_entry(django_user_model) -> None:  # type: ignore[no-untyped-def]
    from accounts.models import AuditEntry

    ours = Organization.objects.create(cvr="11111111", name="Vores")
    client = limited_client(django_user_model, "Operator", ours)
    endpoint = Endpoint.objects.create(organization=ours, host="intranet.example", port=443)
    assert client.post(reverse("endpoints:delete", args=[endpoint.pk])).status_code == 302
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    entry = AuditEntry.objects.get(action="endpoint_deleted")
    assert entry.actor_label == "limited-operator" and entry.detail["endpoint"] == "intranet.example:443"
    assert entry.detail["organisation"] == "11111111"
