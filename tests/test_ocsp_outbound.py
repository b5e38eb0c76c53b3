"""The OCSP check calls only what it should and believes only what it may (issue 10, item 5)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from certificates import revocation
from certificates.choices import LifecycleState
from certificates.models import Certificate, TrustedCA
from certificates.revocation import OcspRefused, check_all, check_one, is_public
from certificates.services import import_certificate_file

from . import pki

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC)


@dataclass
class Responder:
    """A tiny local HTTP server that records every request and answers what the test sets."""

    server: ThreadingHTTPServer
    requests: list[bytes] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/ocsp"


@pytest.fixture
def responder() -> Iterator[Responder]:
    yield from _responder()


@pytest.fixture
def second_responder() -> Iterator[Responder]:
    yield from _responder()


def _responder() -> Iterator[Responder]:
    state: Responder

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.requests.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Responder(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def trust(ca: pki.Issued) -> None:
    TrustedCA.objects.create(
        name=ca.certificate.subject.rfc4514_string(),
        subject_dn=ca.certificate.subject.rfc4514_string(),
        fingerprint_sha256=ca.certificate.fingerprint(hashes.SHA256()).hex().upper(),
        not_after=ca.certificate.not_valid_after_utc,
        pem=ca.pem.decode(),
    )


def leaf_naming(ca: pki.Issued, ocsp_url: str) -> pki.Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.name("Lønsystem"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    )
    return pki.Issued(builder.sign(ca.key, hashes.SHA256()), key)


def imported(ca: pki.Issued, ocsp_url: str) -> tuple[Certificate, pki.Issued]:
    leaf = leaf_naming(ca, ocsp_url)
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    return outcome.certificate, leaf


def responder_certificate(ca: pki.Issued, *, delegated: bool) -> pki.Issued:
    """A certificate the CA issued to an OCSP responder: with id-kp-OCSPSigning when `delegated`."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = [ExtendedKeyUsageOID.OCSP_SIGNING if delegated else ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.name("OCSP responder"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    )
    return pki.Issued(builder.sign(ca.key, hashes.SHA256()), key)


def answer(
    leaf: pki.Issued,
    ca: pki.Issued,
    *,
    revoked: bool = True,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    signer: pki.Issued | None = None,
) -> bytes:
    this_update = this_update or NOW - dt.timedelta(minutes=1)
    signer = signer or ca
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf.certificate,
            issuer=ca.certificate,
            algorithm=hashes.SHA1(),  # noqa: S303 - CertID as the portal asks for it
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=this_update,
            next_update=next_update or this_update + dt.timedelta(hours=1),
            revocation_time=NOW - dt.timedelta(hours=2) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
    )
    if signer is not ca:
        builder = builder.certificates([signer.certificate])
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def trusted_ca(settings) -> pki.Issued:  # type: ignore[no-untyped-def]
    settings.MITID_TEST_URL = "https://mitid-test.example.invalid/test"
    settings.MITID_PRODUCTION_URL = "https://mitid.example.invalid/production"
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = []
    ca = pki.make_ca("OCSP Test Root")
    trust(ca)
    return ca


@pytest.fixture
def local_ca_allowed(settings, trusted_ca):  # type: ignore[no-untyped-def]
    """The trusted CA's responder runs on this machine, and the settings say so."""
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = ["127.0.0.1"]
    return trusted_ca


# --- never calling what an imported certificate made up ------------------------------------------------


def test_unverified_certificate_naming_a_local_responder_gets_no_request(responder, settings):
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = ["127.0.0.1"]  # even where loopback would be allowed
    certificate, leaf = imported(pki.make_ca("Untrusted CA"), responder.url)
    responder.body = answer(leaf, pki.make_ca())
    assert certificate.chain_verified is False
    assert check_all() == 0
    assert check_one(certificate) is False
    assert responder.requests == []


def test_verified_certificate_naming_loopback_or_metadata_address_gets_no_request(responder, trusted_ca):
    certificate, leaf = imported(trusted_ca, responder.url)
    responder.body = answer(leaf, trusted_ca)
    assert certificate.chain_verified is True
    with pytest.raises(OcspRefused, match=r"127\.0\.0\.1, an address the OCSP check does not call"):
        check_one(certificate)
    port = responder.server.server_port
    for url in ("http://169.254.169.254/latest/meta-data/", f"http://localhost:{port}/", "http://[::1]/"):
        Certificate.objects.filter(pk=certificate.pk).update(ocsp_urls=[url])
        with pytest.raises(OcspRefused, match="an address the OCSP check does not call"):
            check_one(Certificate.objects.get(pk=certificate.pk))
    for url in ("file:///etc/passwd", "gopher://127.0.0.1:70/"):
        Certificate.objects.filter(pk=certificate.pk).update(ocsp_urls=[url])
        with pytest.raises(OcspRefused, match="not an http"):
            check_one(Certificate.objects.get(pk=certificate.pk))
    assert check_all() == 0  # refused, logged, and nothing blocked
    assert responder.requests == []
    assert Certificate.objects.get(pk=certificate.pk).state == LifecycleState.ACTIVE


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - judged, not bound
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_non_public_addresses_are_not_called(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "193.163.102.10", "2a00:1450:4001:80b::200e"])
def test_public_addresses_may_be_called(address):
    assert is_public(address)


def test_connection_goes_to_the_checked_address_whatever_the_name_resolves_to_later(
    responder, local_ca_allowed, settings, monkeypatch
):
    """DNS rebinding: the name is resolved once, checked, and that address is the one connected to."""
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = ["ocsp.firma.example"]
    certificate, leaf = imported(
        local_ca_allowed, f"http://ocsp.firma.example:{responder.server.server_port}/"
    )
    responder.body = answer(leaf, local_ca_allowed, revoked=False)
    resolved = []
    real_getaddrinfo = revocation.socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "ocsp.firma.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        resolved.append(host)
        # First the address that passes the check; any later look-up would get cloud metadata.
        return [(2, 1, 6, "", ("127.0.0.1" if len(resolved) == 1 else "169.254.169.254", port))]

    monkeypatch.setattr(revocation.socket, "getaddrinfo", rebinding)
    assert check_one(certificate) is False
    assert resolved == ["ocsp.firma.example"] and len(responder.requests) == 1


# --- believing only authorised, fresh answers ----------------------------------------------------------


def test_fresh_answer_signed_by_the_issuer_blocks_a_revoked_certificate(responder, local_ca_allowed):
    certificate, leaf = imported(local_ca_allowed, responder.url)
    responder.body = answer(leaf, local_ca_allowed, revoked=False)
    assert check_one(certificate) is False
    responder.body = answer(leaf, local_ca_allowed)
    assert check_all() == 1
    assert Certificate.objects.get(pk=certificate.pk).state == LifecycleState.BLOCKED
    assert len(responder.requests) == 2


def test_answer_from_a_delegated_responder_counts(responder, local_ca_allowed):
    certificate, leaf = imported(local_ca_allowed, responder.url)
    delegate = responder_certificate(local_ca_allowed, delegated=True)
    responder.body = answer(leaf, local_ca_allowed, signer=delegate)
    assert check_one(certificate) is True


@pytest.mark.parametrize("case", ["no OCSPSigning", "not issued by the CA", "no certificate"])
def test_answer_signed_by_an_undelegated_key_is_refused(responder, local_ca_allowed, case):
    certificate, leaf = imported(local_ca_allowed, responder.url)
    if case == "no OCSPSigning":
        signer = responder_certificate(local_ca_allowed, delegated=False)
    elif case == "not issued by the CA":
        signer = responder_certificate(pki.make_ca("OCSP Test Root"), delegated=True)  # the same name
    else:
        signer = pki.make_ca("OCSP Test Root")  # a key of its own with the CA's name: a look-alike
    responder.body = answer(leaf, local_ca_allowed, signer=signer)
    with pytest.raises(OcspRefused, match="not signed by the issuer or a responder it delegated"):
        check_one(certificate)
    assert Certificate.objects.get(pk=certificate.pk).state == LifecycleState.ACTIVE


@pytest.mark.parametrize(
    ("this_update", "next_update", "why"),
    [
        (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=2), "stale"),
        (NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=2), "in the future"),
    ],
)
def test_stale_or_future_answer_is_refused(responder, local_ca_allowed, this_update, next_update, why):
    certificate, leaf = imported(local_ca_allowed, responder.url)
    responder.body = answer(leaf, local_ca_allowed, this_update=this_update, next_update=next_update)
    with pytest.raises(OcspRefused, match=why):
        check_one(certificate)
    assert Certificate.objects.get(pk=certificate.pk).state == LifecycleState.ACTIVE


def test_answer_about_another_certificate_is_refused(responder, local_ca_allowed):
    certificate, _ = imported(local_ca_allowed, responder.url)
    responder.body = answer(leaf_naming(local_ca_allowed, responder.url), local_ca_allowed)
    with pytest.raises(OcspRefused, match="about another certificate"):
        check_one(certificate)


def test_redirect_is_not_followed(responder, second_responder, local_ca_allowed):
    certificate, leaf = imported(local_ca_allowed, responder.url)
    second_responder.body = answer(leaf, local_ca_allowed)
    responder.status, responder.headers = 302, {"Location": second_responder.url}
    with pytest.raises(OcspRefused, match="HTTP 302"):
        check_one(certificate)
    assert len(responder.requests) == 1 and second_responder.requests == []


def test_oversized_answer_is_refused(responder, local_ca_allowed, settings):
    certificate, _ = imported(local_ca_allowed, responder.url)
    responder.body = b"0" * (settings.TRUSTVIEW_OCSP_MAX_BYTES + 1)
    with pytest.raises(OcspRefused, match="larger than"):
        check_one(certificate)
