"""TLS endpoints: real servers on loopback (`openssl s_server`, and an SMTP server with STARTTLS on Python's
ssl), serving certificates made here in the shape of OCES3 system certificates, scanned by the portal."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import limit_to_organisations
from certificates.choices import EventKind, LifecycleState, TrustSource
from certificates.models import Certificate, Event, Organization, TrustedCA
from certificates.services import import_certificate_file
from certificates.trust import fingerprint, trusted_ca_fields
from endpoints import alerts, services
from endpoints.choices import ErrorCode, ProblemKind
from endpoints.models import Endpoint, Problem, RegistrationItem, Scan

from .conftest import user_with_role
from .pki import NOW, Issued, make_ca, make_leaf, oces3_subject
from .support.tls_servers import free_port, s_server, silent_server, starttls_server

pytestmark = pytest.mark.django_db

CVR = "12345678"
NAME = "service.example"


@pytest.fixture
def pki() -> dict[str, Issued]:
    """A root the portal trusts, an issuing CA under it, and a system certificate for service.example."""
    root = make_ca("Testrod-CA")
    issuing = make_ca("Test udstedende CA", issuer=root)
    TrustedCA.objects.create(
        fingerprint_sha256=fingerprint(root.certificate),
        **trusted_ca_fields(root.certificate, TrustSource.ADDED),
    )
    identity = uuid.uuid4()
    leaf = make_leaf(issuing, oces3_subject("Lønsystem", CVR, identity), san=[NAME])
    renewal = make_leaf(
        issuing,
        oces3_subject("Lønsystem", CVR, identity),
        san=[NAME],
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=400),
    )
    return {"root": root, "issuing": issuing, "leaf": leaf, "renewal": renewal}


@pytest.fixture
def organisation() -> Organization:
    return Organization.objects.create(cvr=CVR, name="Testorganisation")


@pytest.fixture
def alert_settings(settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_ALERT_EMAILS = ["drift@example.dk"]
    settings.TRUSTVIEW_DEPLOYMENT_GRACE_SECONDS = 3600
    settings.TRUSTVIEW_ENDPOINT_HANDSHAKE_TIMEOUT_SECONDS = 0.5
    return settings


def endpoint_at(
    port: int, organisation: Organization | None, sni: str = NAME, protocol: str = "tls"
) -> Endpoint:
    return Endpoint.objects.create(
        organization=organisation, host="127.0.0.1", port=port, sni=sni, protocol=protocol
    )


def test_a_scan_records_leaf_chain_and_version_and_enters_the_certificate_linked_to_the_endpoint(
    tmp_path: Path, pki, organisation, alice_client
):  # type: ignore[no-untyped-def]
    with s_server(tmp_path, pki["leaf"], [pki["issuing"]]) as port:
        endpoint = endpoint_at(port, organisation)
        scan = services.scan_endpoint(endpoint)
    assert scan.ok and scan.tls_version.startswith("TLSv1.")
    assert scan.served_pem.count("BEGIN CERTIFICATE") == 2  # leaf and issuing CA, as served
    assert scan.name_matches and scan.chain_complete and scan.chain_verified
    certificate = Certificate.objects.get(fingerprint_sha256=fingerprint(pki["leaf"].certificate))
    assert scan.certificate == certificate and certificate.source == "endpoint"
    assert certificate.organization == organisation and certificate.chain_verified
    assert Event.objects.filter(certificate=certificate, kind=EventKind.DISCOVERED).exists()
    # The certificate's page lists the endpoint and when it was last seen; the endpoint's page lists
    # the certificate.
    page = alice_client.get(certificate.get_absolute_url()).content.decode()
    assert str(endpoint) in page and "last seen" in page
    page = alice_client.get(endpoint.get_absolute_url()).content.decode()
    assert certificate.get_absolute_url() in page and "Verifies to the trust store" in page
    assert not Problem.objects.exists()


def test_name_mismatch_and_incomplete_chain_are_recorded_and_alerted_once(
    tmp_path: Path, pki, organisation, alert_settings
):  # type: ignore[no-untyped-def]
    with s_server(tmp_path, pki["leaf"]) as port:  # no -cert_chain: the issuing CA is missing
        endpoint = endpoint_at(port, organisation, sni="www.example.dk")
        scan = services.scan_endpoint(endpoint)
    assert scan.name_matches is False and scan.chain_complete is False
    assert set(Problem.objects.values_list("kind", flat=True)) == {
        ProblemKind.NAME_MISMATCH,
        ProblemKind.CHAIN_INCOMPLETE,
    }
    assert alerts.tell() == {"alerted": 2, "cleared": 0}
    (message,) = mail.outbox
    assert "is not for www.example.dk" in message.body and "without every issuing CA" in message.body
    assert alerts.tell() == {"alerted": 0, "cleared": 0}
    # Another certificate, now with its chain, still for the wrong name: the chain problem clears (said
    # once); the name problem goes on as the same problem, not alerted again.
    with s_server(tmp_path, pki["renewal"], [pki["issuing"]], port=endpoint.port):
        services.scan_endpoint(endpoint)
    assert alerts.tell() == {"alerted": 0, "cleared": 1}
    assert "Chain incomplete" in mail.outbox[1].subject
    assert Problem.objects.get(closed_at=None).kind == ProblemKind.NAME_MISMATCH


def test_refused_timeout_and_unresolved_say_what_happened(organisation, alert_settings):  # type: ignore[no-untyped-def]
    refused = services.scan_endpoint(endpoint_at(free_port(), organisation))
    assert refused.error_code == ErrorCode.REFUSED and "refused the connection" in refused.error_text
    with silent_server() as port:
        timeout = services.scan_endpoint(endpoint_at(port, organisation))
    assert timeout.error_code == ErrorCode.TIMEOUT and "did not answer in time" in timeout.error_text
    unresolved = services.scan_endpoint(
        Endpoint.objects.create(organization=organisation, host="no-such-host.invalid", port=443)
    )
    assert unresolved.error_text == "The name no-such-host.invalid could not be resolved."
    # Each endpoint stopped answering: one alert listing the three.
    assert alerts.tell()["alerted"] == 3
    assert "refused the connection" in mail.outbox[0].body
    # Scans are kept 90 days, but each endpoint's last scan always.
    again = services.scan_endpoint(refused.endpoint)
    later = timezone.now() + dt.timedelta(days=91)
    assert services.prune_scans(later) == 1  # the first scan of the refused endpoint
    assert not Scan.objects.filter(pk=refused.pk).exists()
    assert Scan.objects.filter(pk=again.pk).exists() and timeout.endpoint.scans.exists()


def test_a_server_that_does_not_speak_tls_is_a_handshake_failure(tmp_path: Path, pki, organisation):  # type: ignore[no-untyped-def]
    with starttls_server(pki["leaf"], tmp_path) as port:  # plain SMTP greeting, scanned as direct TLS
        scan = services.scan_endpoint(endpoint_at(port, organisation, protocol="tls"))
    assert scan.error_code == ErrorCode.HANDSHAKE
    assert scan.error_text.startswith("The TLS handshake failed: ")


@pytest.mark.parametrize("protocol", ["smtp", "imap", "ldap"])
def test_starttls(tmp_path: Path, pki, organisation, protocol):  # type: ignore[no-untyped-def]
    with starttls_server(pki["leaf"], tmp_path, protocol) as port:
        scan = services.scan_endpoint(endpoint_at(port, organisation, protocol=protocol))
    assert scan.ok, scan.error_text
    assert scan.fingerprint_sha256 == fingerprint(pki["leaf"].certificate)


def test_a_server_that_refuses_starttls_says_so(tmp_path: Path, pki, organisation):  # type: ignore[no-untyped-def]
    with starttls_server(pki["leaf"], tmp_path, "smtp") as port:  # an SMTP server, scanned as IMAP
        scan = services.scan_endpoint(endpoint_at(port, organisation, protocol="imap"))
    assert scan.error_code == ErrorCode.STARTTLS
    assert scan.error_text == "The server did not accept STARTTLS: greeting: 220 mail.example ESMTP ready."


def test_blocked_addresses_are_refused_before_any_connection(settings, organisation, alice):  # type: ignore[no-untyped-def]
    with pytest.raises(services.EndpointInputError, match="may not reach"):
        services.clean_spec("169.254.169.254", "80", "tls", "")
    with pytest.raises(services.EndpointInputError, match="may not reach"):
        services.clean_spec("[::ffff:169.254.169.254]:443", "", "tls", "")  # the same, as IPv4-mapped IPv6
    # A name that resolves into a blocked network is refused at scan time, on the resolved address.
    settings.TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS = [
        *settings.TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS,
        "127.0.0.0/8",
    ]
    with silent_server() as port:
        scan = services.scan_endpoint(
            Endpoint.objects.create(organization=organisation, host="localhost", port=port)
        )
    assert scan.error_code == ErrorCode.BLOCKED and "may not reach" in scan.error_text


def test_still_serving_the_superseded_certificate_alerts_after_the_grace_period_and_clears(
    tmp_path: Path, pki, organisation, alert_settings, alice_client
):  # type: ignore[no-untyped-def]
    port = free_port()
    with s_server(tmp_path, pki["leaf"], [pki["issuing"]], port=port):
        endpoint = endpoint_at(port, organisation)
        services.scan_endpoint(endpoint)
        # The renewal arrives by import: the old certificate is superseded, the endpoint due at once.
        import_certificate_file(pki["renewal"].pem + pki["issuing"].pem, actor="test")
        old = Certificate.objects.get(fingerprint_sha256=fingerprint(pki["leaf"].certificate))
        assert old.state == LifecycleState.SUPERSEDED
        assert Endpoint.objects.get(pk=endpoint.pk).next_scan_at <= timezone.now()
        assert services.scan_due() == 1
    problem = Problem.objects.get(kind=ProblemKind.SUPERSEDED)
    dashboard = alice_client.get(reverse("home")).content.decode()
    assert reverse("endpoints:not-deployed") in dashboard
    assert str(endpoint) in alice_client.get(reverse("endpoints:not-deployed")).content.decode()
    assert alerts.tell() == {"alerted": 0, "cleared": 0}  # within the grace period
    later = timezone.now() + dt.timedelta(hours=2)
    assert alerts.tell(later)["alerted"] == 1
    (alert,) = mail.outbox
    assert "still serves" in alert.body and str(endpoint) in alert.subject
    assert alerts.tell(later)["alerted"] == 0  # once
    # The new certificate is installed: the next scan clears it, and says so once.
    with s_server(tmp_path, pki["renewal"], [pki["issuing"]], port=port):
        services.scan_endpoint(endpoint)
    problem.refresh_from_db()
    assert problem.closed_at is not None
    assert alerts.tell() == {"alerted": 0, "cleared": 1}
    assert "fixed" in mail.outbox[1].body and alerts.tell()["cleared"] == 0
    assert not Endpoint.objects.not_deployed().exists()


def test_a_user_never_sees_adds_or_scans_another_organisations_endpoint(django_user_model, organisation):  # type: ignore[no-untyped-def]
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    hidden = Endpoint.objects.create(organization=theirs, host="10.1.2.3", port=443)
    user = user_with_role(django_user_model, "limited", "Operator")
    limit_to_organisations(user, [organisation])
    client = Client()
    client.force_login(user)
    assert client.get(reverse("endpoints:detail", args=[hidden.pk])).status_code == 404
    assert client.post(reverse("endpoints:scan", args=[hidden.pk])).status_code == 404
    assert client.post(reverse("endpoints:delete", args=[hidden.pk])).status_code == 404
    assert "10.1.2.3" not in client.get(reverse("endpoints:list")).content.decode()
    response = client.post(
        reverse("endpoints:add"), {"host": "10.9.9.9", "protocol": "tls", "organization": theirs.pk}
    )
    assert response.status_code == 400 and not hidden.scans.exists()
    assert not Endpoint.objects.filter(host="10.9.9.9").exists()


def test_bulk_add_names_every_bad_line_and_stores_nothing_until_all_are_good(alice_client, organisation):  # type: ignore[no-untyped-def]
    url = reverse("endpoints:bulk")
    text = "host,port,protocol,sni\nwww.example.dk\nhttps://mail.example.dk/\nldap.example.dk,99999,ldap\n"
    response = alice_client.post(url, {"text": text, "organization": organisation.pk})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Line 3: “https://mail.example.dk/” is not a host name" in page
    assert "Line 4: The port must be a number from 1 to 65535." in page
    assert not Endpoint.objects.exists()
    csv_file = SimpleUploadedFile(
        "endpoints.csv", b"www.example.dk\nmail.example.dk:587,,smtp\n10.0.0.5;8443;tls;intranet.example.dk\n"
    )
    response = alice_client.post(url, {"file": csv_file, "organization": organisation.pk})
    assert response.status_code == 302
    assert set(Endpoint.objects.values_list("host", "port", "protocol", "sni")) == {
        ("www.example.dk", 443, "tls", ""),
        ("mail.example.dk", 587, "smtp", ""),
        ("10.0.0.5", 8443, "tls", "intranet.example.dk"),
    }
    # Their first scans are spread out, not all at once.
    assert len(set(Endpoint.objects.values_list("next_scan_at", flat=True))) == 3


def test_registration_checklist_follows_the_renewal_reminds_daily_and_records_who_ticked(
    pki, alert_settings, alice_client, olga_client
):  # type: ignore[no-untyped-def]
    (outcome,) = import_certificate_file(pki["leaf"].pem + pki["issuing"].pem, actor="test")
    old = outcome.certificate
    response = alice_client.post(
        reverse("endpoints:registration-add", args=[old.pk]),
        {"place": "Skatteforvaltningen TastSelv Erhverv", "done": "on"},
    )
    assert response.status_code == 302
    assert alerts.send_registration_reminder() == 0  # registered there: nothing open
    (renewal,) = import_certificate_file(pki["renewal"].pem + pki["issuing"].pem, actor="test")
    item = RegistrationItem.objects.get(certificate=renewal.certificate)
    assert item.place == "Skatteforvaltningen TastSelv Erhverv" and not item.done
    assert "To register" in alice_client.get(renewal.certificate.get_absolute_url()).content.decode()
    assert alerts.send_registration_reminder() == 1
    assert "TastSelv Erhverv" in mail.outbox[0].body
    assert alerts.send_registration_reminder() == 0  # once a day
    tomorrow = timezone.now() + dt.timedelta(days=1)
    assert alerts.send_registration_reminder(tomorrow) == 1  # and again the next day while it is open
    assert olga_client.post(reverse("endpoints:registration-tick", args=[item.pk])).status_code == 302
    item.refresh_from_db()
    assert item.done and item.done_by_label == "olga"
    ticked = Event.objects.get(
        certificate=renewal.certificate, kind=EventKind.REGISTRATION, actor_label="olga"
    )
    assert "TastSelv Erhverv" in ticked.text
    assert alerts.send_registration_reminder(tomorrow + dt.timedelta(days=1)) == 0  # nothing open any more


def test_the_api_adds_lists_and_scans_endpoints_within_the_users_organisations(
    tmp_path: Path, pki, organisation, django_user_model
):  # type: ignore[no-untyped-def]
    from accounts.tokens import create_token

    operator = user_with_role(django_user_model, "script", "Operator")
    limit_to_organisations(operator, [organisation])
    _row, token = create_token(operator, "test")
    api = Client(headers={"Authorization": f"Bearer {token}"})
    with s_server(tmp_path, pki["leaf"], [pki["issuing"]]) as port:
        body = {"host": f"127.0.0.1:{port}", "sni": NAME, "organization": organisation.pk}
        response = api.post("/api/v1/endpoints/", body, content_type="application/json")
        assert response.status_code == 201, response.content
        added = response.json()
        assert added["last_scan"]["tls_version"].startswith("TLSv1.") and added["last_scan"]["name_matches"]
        assert added["certificate"] == Certificate.objects.get(source="endpoint").pk
        scan = api.post(f"/api/v1/endpoints/{added['id']}/scan/").json()
        assert scan["chain_complete"] and scan["error_code"] == ""
    assert [e["id"] for e in api.get("/api/v1/endpoints/").json()["results"]] == [added["id"]]
    bad = api.post(
        "/api/v1/endpoints/bulk/",
        {"text": "www.example.dk\nftp://x.example.dk\n", "organization": organisation.pk},
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    assert bad.json()["errors"]["text"] == [
        "Line 2: “ftp://x.example.dk” is not a host name or an IP address (no https://, path or port here)."
    ]
    assert Endpoint.objects.count() == 1
    theirs = Endpoint.objects.create(
        organization=Organization.objects.create(cvr="99887766"), host="10.1.2.3", port=443
    )
    assert api.get(f"/api/v1/endpoints/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/endpoints/{theirs.pk}/scan/").status_code == 404
