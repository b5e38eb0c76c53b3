"""The daily revocation check: ask each certificate's OCSP responder (RFC 6960) whether it is revoked.

The OCSP address comes from a certificate, so from whoever made it. The check therefore asks only the
responders of certificates whose chain verified to a trusted root (certificates.trust), and only over a
guarded connection: http(s) alone, a short deadline, no redirects, a size cap, and never a loopback,
private, link-local or otherwise non-public address unless the host is a configured CA's (MITID_*_URL,
TRUSTVIEW_OCSP_ALLOWED_HOSTS). The connection goes to the very address that was checked, so a name
that resolves differently a moment later (DNS rebinding) changes nothing. An answer counts only when the
issuer signed it, or a responder the issuer delegated (id-kp-OCSPSigning), and it is fresh.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import urllib3
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from .models import Certificate
from .renewal import mark_blocked
from .services import SCHEDULER
from .trust import issued_by
from .x509 import load_pem_list

log = logging.getLogger(__name__)

# How far a responder's clock may run ahead of ours, and how old an answer without nextUpdate may be.
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_AGE_WITHOUT_NEXT_UPDATE = dt.timedelta(days=1)


class OcspRefused(ValueError):
    """An OCSP exchange the portal will not make or will not believe (the message says which, for logs)."""


def check_all(now: dt.datetime | None = None) -> int:
    """Check every live certificate that verified to a trusted root and names an OCSP responder; block
    those reported revoked. Returns how many were newly found revoked. A responder that cannot be reached,
    or whose answer is refused, is logged and tried again at the next run."""
    now = now or timezone.now()
    live = (
        Certificate.objects.live(now)
        .filter(chain_verified=True)
        .only("pk", "pem", "chain_pem", "ocsp_urls", "chain_verified", "subject_cn")
    )
    revoked = 0
    for row in live.iterator():
        if not row.ocsp_urls:
            continue
        try:
            revoked += check_one(row, now=now)
        except (urllib3.exceptions.HTTPError, OSError, ValueError, InvalidSignature) as error:
            log.warning(
                "OCSP check of certificate %s failed: %s: %s", row.pk, error.__class__.__name__, error
            )
    return revoked


def check_one(row: Certificate, now: dt.datetime | None = None) -> bool:
    """Ask the certificate's responder; returns True when it says revoked (and the certificate is blocked).

    Raises OcspRefused (a ValueError) for an address that must not be called or an answer that must not
    be believed, and urllib3 or OS errors when the responder cannot be reached.
    """
    if row.chain_verified is not True:
        log.info("Certificate %s did not verify to a trusted root; its OCSP responder is not asked", row.pk)
        return False
    certificate = load_pem_list(row.pem)[0]
    chain = load_pem_list(row.chain_pem)
    if not chain or not issued_by(certificate, chain[0]):
        log.info("No verified issuer for certificate %s; its OCSP status cannot be asked", row.pk)
        return False
    issuer = chain[0]
    # SHA-1 only names the certificate in the request (CertID, as RFC 5019 has it); it protects nothing.
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
    body = post_ocsp(row.ocsp_urls[0], request.public_bytes(serialization.Encoding.DER))
    try:
        answer = ocsp.load_der_ocsp_response(body)
    except ValueError as error:
        raise OcspRefused("the OCSP answer cannot be read") from error
    single = accept_answer(answer, certificate, issuer, now or timezone.now())
    if single.certificate_status != ocsp.OCSPCertStatus.REVOKED:
        return False
    reason = single.revocation_reason.name if single.revocation_reason else "unspecified"
    when = single.revocation_time_utc
    return mark_blocked(
        row,
        SCHEDULER,
        order_error=gettext_noop("The CA reports the certificate as revoked."),
        message=gettext_noop("The CA's OCSP responder reports it revoked (%(reason)s) since %(when)s UTC."),
        reason=reason,
        when=f"{when:%Y-%m-%d %H:%M}" if when else "?",
    )


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


def post_ocsp(url: str, body: bytes) -> bytes:
    """POST an OCSP request to `url` over the guarded connection described at the top; the answer's bytes.

    Raises OcspRefused for an address or an answer the check does not accept.
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise OcspRefused(f"not an http(s) OCSP address: {url[:200]!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as error:
        raise OcspRefused(f"bad port in OCSP address {url[:200]!r}") from error
    addresses = _addresses(host, port)
    if host not in allowed_hosts():
        for address in addresses:
            if not is_public(address):
                raise OcspRefused(f"{host} is {address}, an address the OCSP check does not call")
    timeout = settings.TRUSTVIEW_OCSP_TIMEOUT_SECONDS
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            addresses[0], port, server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED"
        )
    else:
        pool = urllib3.HTTPConnectionPool(addresses[0], port)
    default_port = port == (443 if scheme == "https" else 80)
    host_header = host if ":" not in host else f"[{host}]"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with pool:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={
                "Host": host_header if default_port else f"{host_header}:{port}",
                "Content-Type": "application/ocsp-request",
                "Accept": "application/ocsp-response",
            },
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=False,
            decode_content=False,
        )
        try:
            if response.status != 200:
                raise OcspRefused(f"the OCSP responder answered HTTP {response.status}")
            return _read_capped(response, settings.TRUSTVIEW_OCSP_MAX_BYTES, time.monotonic() + timeout)
        finally:
            response.release_conn()


def _read_capped(response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OcspRefused(f"the OCSP answer is larger than {limit} bytes")
    data = b""
    while True:
        if time.monotonic() > deadline:
            raise OcspRefused("the OCSP responder took too long")
        chunk = response.read(8192)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise OcspRefused(f"the OCSP answer is larger than {limit} bytes")


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
