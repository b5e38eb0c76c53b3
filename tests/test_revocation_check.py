"""The revocation check at scale (issue 12): a slice of the oldest per run, ids first, the CRL read once
per issuer, OCSP where the CRL cannot be used, and every outside server given up in bounded time."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID
from django.db import connection
from django.test.utils import CaptureQueriesContext

from certificates import revocation
from certificates.choices import EventKind, LifecycleState
from certificates.models import Certificate, Event
from certificates.revocation import check_all
from certificates.services import import_certificate_file

from . import pki
from .test_ocsp_outbound import answer, trust

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC)


@dataclass
class CA:
    """A local CA's HTTP server: its CRL on GET /crl, an OCSP answer (set by the test) on POST /ocsp."""

    server: ThreadingHTTPServer
    crl: bytes = b""
    ocsp: bytes = b""
    delay: float = 0.0
    crl_requests: int = 0
    ocsp_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def ca_server() -> Iterator[CA]:
    state: CA

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the check's pools expect

        def do_GET(self) -> None:
            with state.lock:
                state.crl_requests += 1
            self._answer(state.crl, "application/pkix-crl")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.ocsp_requests += 1
            self._answer(state.ocsp, "application/ocsp-response")

        def _answer(self, body: bytes, kind: str) -> None:
            time.sleep(state.delay)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the check gave up waiting
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = CA(server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_ca(settings) -> pki.Issued:  # type: ignore[no-untyped-def]
    """A trusted CA whose CRL and OCSP responder run on this machine, and the settings say so."""
    settings.MITID_TEST_URL = "https://mitid-test.example.invalid/test"
    settings.MITID_PRODUCTION_URL = "https://mitid.example.invalid/production"
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = ["127.0.0.1"]
    ca = pki.make_ca("Revocation Test Root")
    trust(ca)
    return ca


def leaves(ca: pki.Issued, count: int, *, crl: str | None, ocsp: str | None) -> list[pki.Issued]:
    """`count` leaves of `ca` naming its CRL and OCSP addresses, imported as one bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    made = []
    for index in range(count):
        builder = (
            x509.CertificateBuilder()
            .subject_name(pki.name(f"Lønsystem {index}"))
            .issuer_name(ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if crl:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        if ocsp:
            access = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
        made.append(pki.Issued(builder.sign(ca.key, hashes.SHA256()), key))
    import_certificate_file(b"".join(leaf.pem for leaf in made), actor="test")
    return made


def crl_of(ca: pki.Issued, revoked: list[pki.Issued] = (), *, signer: pki.Issued | None = None) -> bytes:  # type: ignore[assignment]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=7))
    )
    for leaf in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(leaf.certificate.serial_number)
            .revocation_date(NOW - dt.timedelta(hours=2))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign((signer or ca).key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def stored(leaf: pki.Issued) -> Certificate:
    return Certificate.objects.get(
        fingerprint_sha256=leaf.certificate.fingerprint(hashes.SHA256()).hex().upper()
    )


def test_one_crl_answers_for_all_of_its_issuers_certificates_and_the_revoked_is_told_once(
    ca_server, local_ca, settings
):
    made = leaves(local_ca, 30, crl=f"{ca_server.base}/crl", ocsp=f"{ca_server.base}/ocsp")
    ca_server.crl = crl_of(local_ca, [made[3]])
    assert check_all() == 1
    assert (ca_server.crl_requests, ca_server.ocsp_requests) == (1, 0)
    states = dict(Certificate.objects.values_list("pk", "state"))
    assert states.pop(stored(made[3]).pk) == LifecycleState.BLOCKED
    assert set(states.values()) == {LifecycleState.ACTIVE}
    (event,) = Event.objects.filter(kind=EventKind.BLOCKED)
    assert "revocation list (CRL) reports it revoked (key_compromise)" in event.text
    assert not Certificate.objects.filter(revocation_checked_at=None).exists()
    settings.TRUSTVIEW_REVOCATION_RECHECK_SECONDS = 0  # check them all again at once
    assert check_all() == 0  # the blocked one is no longer asked about; nothing new is told
    assert Event.objects.filter(kind=EventKind.BLOCKED).count() == 1
    assert (ca_server.crl_requests, ca_server.ocsp_requests) == (2, 0)


def test_the_check_reads_ids_first_then_a_batch_of_rows_at_a_time(ca_server, local_ca, monkeypatch):
    leaves(local_ca, 25, crl=f"{ca_server.base}/crl", ocsp=None)
    ca_server.crl = crl_of(local_ca)
    monkeypatch.setattr(revocation, "READ_BATCH", 10)
    with CaptureQueriesContext(connection) as queries:
        assert check_all() == 0
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    with_pem = [sql for sql in reads if '"pem"' in sql]
    assert len(with_pem) == 3  # 25 rows, 10 at a time
    assert all('"id" IN (' in sql for sql in with_pem)
    assert all('"pem"' not in sql and '"chain_pem"' not in sql for sql in reads if sql not in with_pem)
    assert not Certificate.objects.filter(revocation_checked_at=None).exists()


def test_each_run_takes_the_slice_checked_longest_ago(ca_server, local_ca, settings):
    settings.TRUSTVIEW_REVOCATION_BATCH = 10
    made = leaves(local_ca, 25, crl=f"{ca_server.base}/crl", ocsp=None)
    ca_server.crl = crl_of(local_ca)
    runs = [NOW + dt.timedelta(minutes=5 * n) for n in range(4)]
    for run in runs:
        check_all(now=run)
    checked = dict(Certificate.objects.values_list("pk", "revocation_checked_at"))
    assert sorted(checked.values()) == [runs[0]] * 10 + [runs[1]] * 10 + [runs[2]] * 5
    assert ca_server.crl_requests == 3  # the fourth run found nothing due and fetched nothing
    a_day_later = runs[0] + dt.timedelta(days=1, minutes=1)
    check_all(now=a_day_later)
    again = {
        pk for pk, at in Certificate.objects.values_list("pk", "revocation_checked_at") if at == a_day_later
    }
    assert again == {pk for pk, at in checked.items() if at == runs[0]}
    assert len(made) == 25


@pytest.mark.parametrize("case", ["oversized", "signed by a look-alike", "stale"])
def test_a_crl_that_cannot_be_used_is_logged_once_and_ocsp_answers(
    ca_server, local_ca, settings, caplog, case
):
    made = leaves(local_ca, 3, crl=f"{ca_server.base}/crl", ocsp=f"{ca_server.base}/ocsp")
    ca_server.crl = crl_of(local_ca, made)
    if case == "oversized":
        settings.TRUSTVIEW_CRL_MAX_BYTES = len(ca_server.crl) - 1
        why = "larger than"
    elif case == "signed by a look-alike":
        ca_server.crl = crl_of(local_ca, made, signer=pki.make_ca("Revocation Test Root"))
        why = "not signed by the issuer"
    else:
        why = "stale"
    ca_server.ocsp = answer(made[0], local_ca, revoked=False)  # OCSP says good (about the first only)
    now = NOW + dt.timedelta(days=8) if case == "stale" else None
    if now is not None:  # a week later the CRL is stale, and so would be a fresh-looking OCSP answer
        ca_server.ocsp = answer(made[0], local_ca, revoked=False, this_update=now, next_update=now)
    with caplog.at_level(logging.WARNING, logger="certificates.revocation"):
        assert check_all(now=now) == 0
    crl_lines = [r.getMessage() for r in caplog.records if "could not be used" in r.getMessage()]
    assert len(crl_lines) == 1 and why in crl_lines[0] and "asked by OCSP instead" in crl_lines[0]
    assert (ca_server.crl_requests, ca_server.ocsp_requests) == (1, 3)
    assert not Certificate.objects.filter(state=LifecycleState.BLOCKED).exists()  # the CRL was not believed


def test_a_slow_crl_and_responder_are_given_up_and_a_run_stops_at_its_deadline(
    ca_server, local_ca, settings, caplog
):
    made = leaves(local_ca, 2, crl=f"{ca_server.base}/crl", ocsp=f"{ca_server.base}/ocsp")
    ca_server.crl = crl_of(local_ca, made)
    ca_server.delay = 0.6
    settings.TRUSTVIEW_CRL_TIMEOUT_SECONDS = settings.TRUSTVIEW_OCSP_TIMEOUT_SECONDS = 0.2
    with caplog.at_level(logging.WARNING, logger="certificates.revocation"):
        assert check_all() == 0
    lines = [r.getMessage() for r in caplog.records]
    assert sum("could not be used (ReadTimeoutError" in line for line in lines) == 1
    assert sum("failed: ReadTimeoutError" in line for line in lines) == 2
    assert not Certificate.objects.filter(state=LifecycleState.BLOCKED).exists()
    # Checked (and logged): asked again the next day, not at every run.
    assert not Certificate.objects.filter(revocation_checked_at=None).exists()

    Certificate.objects.update(revocation_checked_at=None)
    settings.TRUSTVIEW_REVOCATION_RUN_SECONDS = 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="certificates.revocation"):
        assert check_all() == 0
    assert any("stopped after 0 s with 0 of 2 certificates asked" in r.getMessage() for r in caplog.records)
    assert Certificate.objects.filter(revocation_checked_at=None).count() == 2  # first in the next run


def test_blocked_networks_are_never_called_even_for_an_allowed_host(ca_server, local_ca, settings, caplog):
    made = leaves(local_ca, 2, crl=f"{ca_server.base}/crl", ocsp=f"{ca_server.base}/ocsp")
    ca_server.crl = crl_of(local_ca, made)
    settings.TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS = ["127.0.0.0/8"]  # as in production
    with caplog.at_level(logging.WARNING, logger="certificates.revocation"):
        assert check_all() == 0
    assert (ca_server.crl_requests, ca_server.ocsp_requests) == (0, 0)
    assert any("in a blocked network" in r.getMessage() for r in caplog.records)

    settings.TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS = []
    settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS = []  # loopback is not public: refused for a host not allowed
    settings.TRUSTVIEW_REVOCATION_RECHECK_SECONDS = 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="certificates.revocation"):
        assert check_all() == 0
    assert (ca_server.crl_requests, ca_server.ocsp_requests) == (0, 0)
    assert any("an address the CRL check does not call" in r.getMessage() for r in caplog.records)
    assert not Certificate.objects.filter(state=LifecycleState.BLOCKED).exists()
