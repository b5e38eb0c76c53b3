"""The revocation check: is each live certificate revoked? Asked of its CA's CRL or OCSP responder.

Spread over the day: the check runs every few minutes (TRUSTVIEW_REVOCATION_CHECK_SECONDS) and each run
takes the certificates checked longest ago, or never, up to TRUSTVIEW_REVOCATION_BATCH, reading their ids
first and then only the columns it needs, a few hundred rows at a time. Requests go out concurrently from
a bounded thread pool; the database is touched only by the calling thread. Where a certificate names a
CRL (CRL distribution points), the CRL is fetched once per issuer and run and answers for all of that
issuer's certificates; where there is none, or it cannot be fetched or believed, the OCSP responder is
asked (RFC 6960). A run starts no request after TRUSTVIEW_REVOCATION_RUN_SECONDS; what is left is the
oldest for the next run.

The addresses come from a certificate, so from whoever made it. The check therefore asks only about
certificates whose chain verified to a trusted root (certificates.trust), and only over a guarded
connection: http(s) alone, a deadline, no redirects, a size cap, never an address of
TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS (certificates.networks), and never a loopback, private, link-local or
otherwise non-public address unless the host is a configured CA's (MITID_*_URL,
TRUSTVIEW_OCSP_ALLOWED_HOSTS). The connection goes to the very address that was checked, so a name that
resolves differently a moment later (DNS rebinding) changes nothing. An answer counts only when the issuer
signed it (or, for OCSP, a responder the issuer delegated with id-kp-OCSPSigning), and it is fresh.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from .models import Certificate
from .networks import is_blocked
from .renewal import mark_blocked
from .services import SCHEDULER
from .trust import issued_by
from .x509 import load_pem_list

log = logging.getLogger(__name__)

# How far a responder's clock may run ahead of ours, and how old an answer without nextUpdate may be.
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_AGE_WITHOUT_NEXT_UPDATE = dt.timedelta(days=1)
# Rows read from the database at a time (their PEM and chain), and the requests queued ahead of the pool.
READ_BATCH = 500
QUEUED_PER_THREAD = 4
# What a failed request is (a refusal, no connection, a bad signature), for the log and a retry next day.
FAILURES = (urllib3.exceptions.HTTPError, OSError, ValueError, InvalidSignature, UnsupportedAlgorithm)
COLUMNS = ("pk", "pem", "chain_pem", "ocsp_urls", "crl_urls", "chain_verified", "subject_cn", "state")


class OcspRefused(ValueError):
    """An exchange (OCSP or CRL) the portal will not make or will not believe (the message says which)."""


@dataclass
class Verdict:
    """What one certificate's check found: revoked or not (by which source), or why nothing was learnt."""

    row: Certificate
    revoked: bool = False
    source: str = ""  # "CRL" or "OCSP"; empty when neither was asked
    reason: str = ""
    when: dt.datetime | None = None
    failure: str = ""


def check_all(now: dt.datetime | None = None) -> int:
    """Check the slice of live, verified certificates checked longest ago (revocation_check_due, at most
    TRUSTVIEW_REVOCATION_BATCH); block those reported revoked. Returns how many were newly found revoked.
    A certificate whose CA cannot be reached, or whose answer is refused, is logged and checked again the
    next day; one not reached before the run's deadline stays the oldest for the next run."""
    now = now or timezone.now()
    ids = due_ids(now, settings.TRUSTVIEW_REVOCATION_BATCH)
    if not ids:
        return 0
    deadline = time.monotonic() + settings.TRUSTVIEW_REVOCATION_RUN_SECONDS
    threads = max(1, settings.TRUSTVIEW_REVOCATION_CONCURRENCY)
    revoked, submitted, checked = 0, 0, list[int]()
    with Connections(threads) as connections, ThreadPoolExecutor(threads, "revocation") as pool:
        crls = CrlCache(connections, now)
        pending: set[Future[Verdict]] = set()
        for row in _rows(ids):
            if time.monotonic() > deadline:
                log.warning(
                    "Revocation check stopped after %.0f s with %d of %d certificates asked; the rest "
                    "are the first of the next run",
                    settings.TRUSTVIEW_REVOCATION_RUN_SECONDS,
                    submitted,
                    len(ids),
                )
                break
            pending.add(pool.submit(_check, row, now, crls, connections))
            submitted += 1
            if len(pending) >= threads * QUEUED_PER_THREAD:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                revoked += _settle(done, checked, now)
        revoked += _settle(wait(pending).done, checked, now)
    _mark_checked(checked, now)
    return revoked


def due_ids(now: dt.datetime, limit: int) -> list[int]:
    """The ids of at most `limit` certificates due for a check: never checked first, then the oldest.
    Two queries, each an index scan of cert_revocation_check_idx (no PEM is read here)."""
    never, oldest = due_queries(now)
    ids = list(never[:limit])
    if len(ids) < limit:
        ids += oldest[: limit - len(ids)]
    return ids


def due_queries(now: dt.datetime) -> tuple[QuerySet[Certificate, int], QuerySet[Certificate, int]]:
    """The ids of the due certificates never checked (in no order), and of those checked before, oldest
    first; separate so that each is a range of the partial index (NULLs and then timestamps)."""
    due = Certificate.objects.revocation_check_due(now)
    never = due.filter(revocation_checked_at__isnull=True).values_list("pk", flat=True)
    oldest = due.filter(revocation_checked_at__isnull=False).order_by("revocation_checked_at", "pk")
    return never, oldest.values_list("pk", flat=True)


def _rows(ids: list[int]) -> Iterator[Certificate]:
    for start in range(0, len(ids), READ_BATCH):
        yield from Certificate.objects.filter(pk__in=ids[start : start + READ_BATCH]).only(*COLUMNS)


def _settle(done: set[Future[Verdict]], checked: list[int], now: dt.datetime) -> int:
    """Act on finished checks in the calling thread: block the revoked, log the failures, and note every
    certificate asked about (in batches) so the next run takes others."""
    revoked = 0
    for future in done:
        verdict = future.result()
        checked.append(verdict.row.pk)
        if verdict.failure:
            log.warning("Revocation check of certificate %s failed: %s", verdict.row.pk, verdict.failure)
        elif verdict.revoked:
            revoked += _block(verdict)
    if len(checked) >= READ_BATCH:
        _mark_checked(checked, now)
    return revoked


def _mark_checked(checked: list[int], now: dt.datetime) -> None:
    if checked:
        Certificate.objects.filter(pk__in=checked).update(revocation_checked_at=now)
        checked.clear()


def _block(verdict: Verdict) -> bool:
    when = f"{verdict.when:%Y-%m-%d %H:%M}" if verdict.when else "?"
    if verdict.source == "CRL":
        message = gettext_noop(
            "The CA's revocation list (CRL) reports it revoked (%(reason)s) since %(when)s UTC."
        )
    else:
        message = gettext_noop("The CA's OCSP responder reports it revoked (%(reason)s) since %(when)s UTC.")
    return mark_blocked(
        verdict.row,
        SCHEDULER,
        order_error=gettext_noop("The CA reports the certificate as revoked."),
        message=message,
        reason=verdict.reason or "unspecified",
        when=when,
    )


def _check(row: Certificate, now: dt.datetime, crls: CrlCache, connections: Connections) -> Verdict:
    """One certificate's check, in a pool thread: its issuer's CRL where it names one that can be used,
    else its OCSP responder. Never raises; a failure is in the verdict."""
    try:
        pair = _certificate_and_issuer(row)
        if pair is None:
            return Verdict(row)
        certificate, issuer = pair
        crl_failure = ""
        crl_url = next((u for u in row.crl_urls or [] if urlsplit(u).scheme.lower() in ("http", "https")), "")
        if crl_url:
            try:
                revoked = crls.revoked(crl_url, issuer)
            except FAILURES as error:
                crl_failure = f"CRL {crl_url[:200]}: {error.__class__.__name__}: {error}"
            else:
                entry = revoked.entry(certificate.serial_number)
                if entry is None:
                    return Verdict(row, source="CRL")
                return Verdict(row, revoked=True, source="CRL", reason=entry[1], when=entry[0])
        if not row.ocsp_urls:
            return Verdict(row, failure=crl_failure)
        single = _ask_ocsp(row.ocsp_urls[0], certificate, issuer, now, connections)
    except FAILURES as error:
        return Verdict(row, failure=f"{error.__class__.__name__}: {error}")
    except (
        Exception
    ) as error:  # a stored certificate or an answer may fail in any way: one is lost, not the run
        log.exception("Revocation check of certificate %s failed unexpectedly", row.pk)
        return Verdict(row, failure=f"{error.__class__.__name__}")
    if single.certificate_status != ocsp.OCSPCertStatus.REVOKED:
        return Verdict(row, source="OCSP")
    reason = single.revocation_reason.name if single.revocation_reason else "unspecified"
    return Verdict(row, revoked=True, source="OCSP", reason=reason, when=single.revocation_time_utc)


def _certificate_and_issuer(row: Certificate) -> tuple[x509.Certificate, x509.Certificate] | None:
    if row.chain_verified is not True:
        log.info("Certificate %s did not verify to a trusted root; its CA is not asked", row.pk)
        return None
    certificate = load_pem_list(row.pem)[0]
    chain = load_pem_list(row.chain_pem)
    if not chain or not issued_by(certificate, chain[0]):
        log.info("No verified issuer for certificate %s; its revocation status cannot be asked", row.pk)
        return None
    return certificate, chain[0]


def check_one(row: Certificate, now: dt.datetime | None = None) -> bool:
    """Ask the certificate's OCSP responder now; returns True when it says revoked (and the certificate is
    blocked by this call).

    Raises OcspRefused (a ValueError) for an address that must not be called or an answer that must not
    be believed, and urllib3 or OS errors when the responder cannot be reached.
    """
    pair = _certificate_and_issuer(row)
    if pair is None or not row.ocsp_urls:
        return False
    certificate, issuer = pair
    with Connections(1) as connections:
        single = _ask_ocsp(row.ocsp_urls[0], certificate, issuer, now or timezone.now(), connections)
    if single.certificate_status != ocsp.OCSPCertStatus.REVOKED:
        return False
    reason = single.revocation_reason.name if single.revocation_reason else "unspecified"
    return _block(Verdict(row, True, "OCSP", reason, single.revocation_time_utc))


def _ask_ocsp(
    url: str,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    now: dt.datetime,
    connections: Connections,
) -> ocsp.OCSPSingleResponse:
    # SHA-1 only names the certificate in the request (CertID, as RFC 5019 has it); it protects nothing.
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
    body = connections.fetch(
        url,
        "OCSP",
        body=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"},
        limit=settings.TRUSTVIEW_OCSP_MAX_BYTES,
        timeout=settings.TRUSTVIEW_OCSP_TIMEOUT_SECONDS,
    )
    try:
        answer = ocsp.load_der_ocsp_response(body)
    except ValueError as error:
        raise OcspRefused("the OCSP answer cannot be read") from error
    return accept_answer(answer, certificate, issuer, now)


# --- the CRL -------------------------------------------------------------------------------------------


class CrlCache:
    """The CRLs of one run: each (address, issuer) fetched and checked once, by the first thread that needs
    it while the others wait, then a dict of its revoked serial numbers answers for every certificate of
    that issuer. A CRL that cannot be fetched or believed is remembered as such (and logged once), so its
    certificates go to OCSP without a second download."""

    def __init__(self, connections: Connections, now: dt.datetime) -> None:
        self.connections, self.now = connections, now
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, bytes], threading.Lock] = {}
        self._results: dict[tuple[str, bytes], RevocationList | Exception] = {}

    def revoked(self, url: str, issuer: x509.Certificate) -> RevocationList:
        """The issuer's CRL at `url`, checked; raises what went wrong."""
        key = (url, issuer.fingerprint(hashes.SHA256()))
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._results:
                try:
                    self._results[key] = read_crl(self._fetch(url), issuer, self.now)
                except FAILURES as error:
                    log.warning(
                        "The CRL %s could not be used (%s: %s); its certificates are asked by OCSP instead",
                        url[:200],
                        error.__class__.__name__,
                        error,
                    )
                    self._results[key] = error
            result = self._results[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _fetch(self, url: str) -> bytes:
        return self.connections.fetch(
            url,
            "CRL",
            headers={"Accept": "application/pkix-crl"},
            limit=settings.TRUSTVIEW_CRL_MAX_BYTES,
            timeout=settings.TRUSTVIEW_CRL_TIMEOUT_SECONDS,
        )


class RevocationList:
    """A checked CRL: its revoked serial numbers as a set (small however long the CRL: the details of
    an entry are read from the CRL only for a certificate found in it)."""

    def __init__(self, crl: x509.CertificateRevocationList) -> None:
        self.crl = crl
        self.serials = frozenset(entry.serial_number for entry in crl)

    def entry(self, serial: int) -> tuple[dt.datetime, str] | None:
        """(revocation time, reason) of a revoked serial number; None when it is not revoked."""
        if serial not in self.serials:
            return None
        found = self.crl.get_revoked_certificate_by_serial_number(serial)
        if found is None:
            return None
        try:
            reason = found.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = "unspecified"
        return found.revocation_date_utc, reason


def read_crl(data: bytes, issuer: x509.Certificate, now: dt.datetime) -> RevocationList:
    """A complete CRL (RFC 5280 5) that `issuer` signed and that is fresh, with its revoked serial numbers.
    Raises OcspRefused for one that is not to be believed, or that does not cover every certificate and
    reason (a delta CRL, or a partial one by its issuing distribution point)."""
    try:
        crl = x509.load_der_x509_crl(data)
    except ValueError:
        try:
            crl = x509.load_pem_x509_crl(data)
        except ValueError as error:
            raise OcspRefused("the CRL cannot be read") from error
    if crl.issuer != issuer.subject:
        raise OcspRefused("the CRL is another CA's")
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise OcspRefused("the CRL is not signed by the issuer")
    if crl.last_update_utc > now + CLOCK_SKEW:
        raise OcspRefused("the CRL is dated in the future (thisUpdate)")
    if crl.next_update_utc is not None:
        if crl.next_update_utc < now - CLOCK_SKEW:
            raise OcspRefused("the CRL is stale (nextUpdate has passed)")
    elif crl.last_update_utc < now - MAX_AGE_WITHOUT_NEXT_UPDATE:
        raise OcspRefused("the CRL is stale (old thisUpdate and no nextUpdate)")
    for extension in crl.extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            raise OcspRefused("the CRL is a delta CRL")
        if isinstance(extension.value, x509.IssuingDistributionPoint):
            point = extension.value
            if (
                point.only_contains_ca_certs
                or point.only_contains_attribute_certs
                or point.only_some_reasons
                or point.indirect_crl
            ):
                raise OcspRefused("the CRL covers only some certificates or reasons")
    return RevocationList(crl)


# --- the answer ----------------------------------------------------------------------------------------


def accept_answer(
    answer: ocsp.OCSPResponse, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime
) -> ocsp.OCSPSingleResponse:
    """The single response about `certificate` in a successful, authorised and fresh answer (RFC 6960
    3.2 and 4.2.2.2). Raises OcspRefused otherwise."""
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspRefused(f"the responder answered {answer.response_status.name}")
    _verify_signer(answer, issuer, now)
    single = next((s for s in answer.responses if _is_about(s, certificate, issuer)), None)
    if single is None:
        raise OcspRefused("the OCSP answer is about another certificate")
    if single.this_update_utc > now + CLOCK_SKEW:
        raise OcspRefused("the OCSP answer is dated in the future (thisUpdate)")
    if single.next_update_utc is not None:
        if single.next_update_utc < now - CLOCK_SKEW:
            raise OcspRefused("the OCSP answer is stale (nextUpdate has passed)")
    elif single.this_update_utc < now - MAX_AGE_WITHOUT_NEXT_UPDATE:
        raise OcspRefused("the OCSP answer is stale (old thisUpdate and no nextUpdate)")
    return single


def _is_about(
    single: ocsp.OCSPSingleResponse, certificate: x509.Certificate, issuer: x509.Certificate
) -> bool:
    """Whether the CertID names this certificate of this issuer (hashed the way the responder hashed)."""
    if single.serial_number != certificate.serial_number:
        return False
    try:
        expected = (
            ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, single.hash_algorithm).build()
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return (single.issuer_name_hash, single.issuer_key_hash) == (
        expected.issuer_name_hash,
        expected.issuer_key_hash,
    )


def _verify_signer(answer: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> None:
    """The answer must be signed by the issuing CA, or by a responder certificate that CA issued for OCSP
    signing (extended key usage id-kp-OCSPSigning) and that is valid now; the signer is the one the
    answer's responder ID names."""
    signers = [issuer] + [c for c in answer.certificates if _delegated(c, issuer, now)]
    signer = next((c for c in signers if _is_responder(answer, c)), None)
    if signer is None:
        raise OcspRefused("the OCSP answer is not signed by the issuer or a responder it delegated")
    algorithm = answer.signature_hash_algorithm
    if algorithm is None:
        raise OcspRefused("the OCSP answer has no hash algorithm")
    public_key = signer.public_key()
    data, signature = answer.tbs_response_bytes, answer.signature
    if isinstance(public_key, rsa.RSAPublicKey):
        if answer.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, data, pss, algorithm)
        else:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise OcspRefused("the OCSP answer is signed with an unsupported key")


def _delegated(candidate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> bool:
    try:
        usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return (
        ExtendedKeyUsageOID.OCSP_SIGNING in usage
        and candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc
        and issued_by(candidate, issuer)
    )


def _is_responder(answer: ocsp.OCSPResponse, candidate: x509.Certificate) -> bool:
    if answer.responder_name is not None:
        return bool(answer.responder_name == candidate.subject)
    try:
        # byKey is SHA-1 of the responder's public key BIT STRING, as RFC 5280's key identifier method 1.
        key_hash = x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return bool(answer.responder_key_hash == key_hash)


# --- the request ---------------------------------------------------------------------------------------


class Connections:
    """Guarded HTTP for one run, shared by its threads: each host name resolved and judged once, and a
    keep-alive pool per address, so a responder asked about thousands of certificates is not connected to
    thousands of times. Use as a context manager (the pools are closed at the end)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._addresses: dict[tuple[str, int, str], str | OcspRefused] = {}
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self._pools.values():
            pool.close()

    def fetch(
        self,
        url: str,
        what: str,
        *,
        headers: dict[str, str],
        limit: int,
        timeout: float,
        body: bytes | None = None,
    ) -> bytes:
        """POST `body` (or GET without one) to `url` over the guarded connection described at the top, and
        return at most `limit` bytes of a 200 answer within `timeout` seconds. `what` (OCSP, CRL) names the
        exchange in refusals. Raises OcspRefused for an address or an answer the check does not accept."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise OcspRefused(f"not an http(s) {what} address: {url[:200]!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as error:
            raise OcspRefused(f"bad port in {what} address {url[:200]!r}") from error
        address = self._address(host, port, what)
        pool = self._pool(scheme, address, port, host)
        default_port = port == (443 if scheme == "https" else 80)
        host_header = host if ":" not in host else f"[{host}]"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        response = pool.urlopen(
            "POST" if body is not None else "GET",
            path,
            body=body,
            headers={"Host": host_header if default_port else f"{host_header}:{port}", **headers},
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=False,
            decode_content=False,
        )
        complete = False
        try:
            if response.status != 200:
                raise OcspRefused(f"the {what} server answered HTTP {response.status}")
            body = _read_capped(response, what, limit, time.monotonic() + timeout)
            complete = True
            return body
        finally:
            if not complete:
                response.close()  # unread bytes are left: the connection is not used again
            response.release_conn()

    def _address(self, host: str, port: int, what: str) -> str:
        """The one address connected to for `host`, after every address it resolves to was judged."""
        key = (host, port, what)
        with self._lock:
            known = self._addresses.get(key)
        if known is None:
            try:
                known = _judged_address(host, port, what)
            except OcspRefused as refused:
                known = refused
            with self._lock:
                self._addresses[key] = known
        if isinstance(known, OcspRefused):
            raise known
        return known

    def _pool(self, scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, address, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        port,
                        maxsize=self.size,
                        server_hostname=host,
                        assert_hostname=host,
                        cert_reqs="CERT_REQUIRED",
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, maxsize=self.size)
                self._pools[key] = pool
        return pool


def _judged_address(host: str, port: int, what: str) -> str:
    """Every address of `host` must be public (unless the host is a configured CA's), and none may be in a
    blocked network, whoever's host it is (an allowed name that comes to resolve to cloud metadata)."""
    addresses = _addresses(host, port)
    if host not in allowed_hosts():
        for address in addresses:
            if not is_public(address):
                raise OcspRefused(f"{host} is {address}, an address the {what} check does not call")
    for address in addresses:
        if is_blocked(address):
            raise OcspRefused(
                f"{host} is {address}, in a blocked network (TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS)"
            )
    return addresses[0]


def post_ocsp(url: str, body: bytes) -> bytes:
    """POST one OCSP request to `url` over the guarded connection; the answer's bytes."""
    with Connections(1) as connections:
        return connections.fetch(
            url,
            "OCSP",
            body=body,
            headers={"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"},
            limit=settings.TRUSTVIEW_OCSP_MAX_BYTES,
            timeout=settings.TRUSTVIEW_OCSP_TIMEOUT_SECONDS,
        )


def _read_capped(response: urllib3.BaseHTTPResponse, what: str, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OcspRefused(f"the {what} answer is larger than {limit} bytes")
    chunks, size = list[bytes](), 0
    while True:
        if time.monotonic() > deadline:
            raise OcspRefused(f"the {what} server took too long")
        chunk = response.read1(65536)  # what has arrived: a trickle cannot outlast the deadline
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise OcspRefused(f"the {what} answer is larger than {limit} bytes")


def _addresses(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (an IP address resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise OcspRefused(f"{host} does not resolve")
    return addresses


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet: not loopback, private, link-local (cloud metadata
    at 169.254.169.254), shared, unspecified, multicast or reserved (IPv4 inside IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def allowed_hosts() -> set[str]:
    """Host names whose responders may be on non-public addresses: the configured CAs' (the simulator's)."""
    hosts = {urlsplit(url).hostname for url in (settings.MITID_TEST_URL, settings.MITID_PRODUCTION_URL)}
    hosts |= set(settings.TRUSTVIEW_OCSP_ALLOWED_HOSTS)
    return {host.lower() for host in hosts if host}
