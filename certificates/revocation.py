"""The daily revocation check: ask each certificate's OCSP responder (RFC 6960) whether it is revoked."""

from __future__ import annotations

import datetime as dt
import logging

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID
from django.utils import timezone
from django.utils.translation import gettext_noop

from .models import Certificate
from .renewal import mark_blocked
from .services import SCHEDULER
from .x509 import load_pem_list

log = logging.getLogger(__name__)
TIMEOUT = (5.0, 15.0)


def ocsp_status(certificate: x509.Certificate, issuer: x509.Certificate, url: str) -> ocsp.OCSPResponse:
    """One OCSP request over HTTP. Raises requests or ValueError exceptions on trouble."""
    # SHA-1 only names the certificate in the request (CertID, as RFC 5019 has it); it protects nothing.
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303
    response = requests.post(
        url,
        data=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
        timeout=TIMEOUT,
    )
    response.raise_for_status()
    return ocsp.load_der_ocsp_response(response.content)


def check_all(now: dt.datetime | None = None) -> int:
    """Check every live certificate that names an OCSP responder; block those reported revoked.

    Returns how many were newly found revoked. A responder that cannot be reached is logged and tried
    again at the next run.
    """
    now = now or timezone.now()
    live = Certificate.objects.live(now).only(
        "pk", "pem", "chain_pem", "ocsp_urls", "authority_key_id", "issuer_dn", "subject_cn"
    )
    revoked = 0
    for row in live.iterator():
        if not row.ocsp_urls:
            continue
        try:
            revoked += check_one(row)
        except (requests.RequestException, ValueError, InvalidSignature) as error:
            log.warning("OCSP check of certificate %s failed: %s", row.pk, error.__class__.__name__)
    return revoked


def check_one(row: Certificate) -> bool:
    """Ask the certificate's responder; returns True when it says revoked (and the certificate is blocked)."""
    certificate = load_pem_list(row.pem)[0]
    issuer = _issuer_of(row)
    if issuer is None:
        log.info("No issuer certificate for %s; its OCSP status cannot be asked", row.pk)
        return False
    answer = ocsp_status(certificate, issuer, row.ocsp_urls[0])
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(f"OCSP responder answered {answer.response_status.name}")
    if answer.serial_number != certificate.serial_number:
        raise ValueError("OCSP answer is about another certificate")
    _verify_signature(answer, issuer)
    if answer.certificate_status != ocsp.OCSPCertStatus.REVOKED:
        return False
    reason = answer.revocation_reason.name if answer.revocation_reason else "unspecified"
    when = answer.revocation_time_utc
    return mark_blocked(
        row,
        SCHEDULER,
        order_error=gettext_noop("The CA reports the certificate as revoked."),
        message=gettext_noop("The CA's OCSP responder reports it revoked (%(reason)s) since %(when)s UTC."),
        reason=reason,
        when=f"{when:%Y-%m-%d %H:%M}",
    )


def _issuer_of(row: Certificate) -> x509.Certificate | None:
    chain = load_pem_list(row.chain_pem)
    if chain:
        return chain[0]
    parent = Certificate.objects.filter(subject_key_id=row.authority_key_id, subject_dn=row.issuer_dn).first()
    return load_pem_list(parent.pem)[0] if parent and row.authority_key_id else None


def _verify_signature(answer: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """The answer must be signed by the issuing CA, or by a responder certificate that CA issued.

    Raises InvalidSignature or ValueError otherwise.
    """
    signer = issuer
    for candidate in answer.certificates:
        candidate.verify_directly_issued_by(issuer)
        signer = candidate
    algorithm = answer.signature_hash_algorithm
    if algorithm is None:
        raise ValueError("OCSP answer without a hash algorithm")
    public_key = signer.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        if answer.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            public_key.verify(answer.signature, answer.tbs_response_bytes, pss, algorithm)
        else:
            public_key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(algorithm))
    else:
        raise ValueError("OCSP answer signed with an unsupported key")
