"""The trust store, and which certificates chain to it by signature.

Names prove nothing: anyone can make a certificate whose subject, OCES UUID and issuer name read like a
real MitID one. A certificate counts as verified only when signatures lead from it, link by link, to a
CA in the trust store (TrustedCA), checked with cryptography's RFC 5280 path builder. The trust store is:
- the OCES3 test and production roots shipped in certificates/trust_roots/ (installed after `migrate`);
- roots named in settings.TRUSTVIEW_TRUST_ROOTS_EXTRA (PEM files; in development the MitID simulator's,
  which `make run` creates under MITID_SIMULATOR_STATE), recorded as rows only so certificates can point
  at them;
- CA certificates an administrator adds in the portal.
Issuing CAs found in the uploaded file, shipped in trust_roots/intermediates/, or in the inventory may
complete a chain; they are trusted only as far as the root's signature on them goes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from .choices import TrustSource
from .models import Certificate, TrustedCA
from .x509 import CertificateFileError, distinguished_name, load_pem_list, read_bundle, to_pem

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "trust_roots"
MAX_CHAIN_DEPTH = 6
# Issuers looked up in the inventory per level; a flood of look-alike CAs must not cost unbounded work.
MAX_CANDIDATES_PER_NAME = 20

# Why a chain did not verify: English sentences, translated where they are shown (detail page).
NOT_CHECKED = gettext_noop("the chain has not been checked yet.")
EMPTY_STORE = gettext_noop("the trust store is empty.")
SELF_SIGNED = gettext_noop("it is self-signed, and not in the trust store.")
ISSUER_UNKNOWN = gettext_noop(
    "the certificate of the CA that issued it is unknown (not in the file, the inventory or the trust store)."
)
BAD_SIGNATURE = gettext_noop(
    "its signature does not verify with the key of the CA it names as issuer; it may be forged."
)
NO_TRUSTED_PATH = gettext_noop(
    "no chain of valid signatures and CA certificates leads from it to a root in the trust store."
)


@dataclass(frozen=True)
class Verdict:
    """Whether one certificate chains to a trusted CA, to which, and the issuers that make the chain.

    `chain` holds the issuers above the certificate, nearest first, each of whose signature on the one
    below verified (up to and including the trusted CA when verified). `error` says why not.
    """

    root: TrustedCA | None
    chain: list[x509.Certificate] = field(default_factory=list)
    error: str = ""

    @property
    def verified(self) -> bool:
        return self.root is not None

    def columns(self) -> dict[str, Any]:
        """The Certificate columns that record this verdict."""
        return {
            "chain_verified": self.verified,
            "trust_root": self.root,
            "verification_error": self.error,
            "verified_at": timezone.now(),
        }


# --- the store -----------------------------------------------------------------------------------------


def label(certificate: x509.Certificate) -> str:
    """A CA's name for people: its common name, with its OU (OCES3 test CAs say "Test - cti")."""
    cn = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ou = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    name = str(cn[0].value) if cn else distinguished_name(certificate.subject)
    return (f"{name} ({ou[0].value!s})" if ou else name)[:255]


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex().upper()


def _row_values(certificate: x509.Certificate, source: TrustSource) -> dict[str, Any]:
    return {
        "name": label(certificate),
        "subject_dn": distinguished_name(certificate.subject),
        "not_after": certificate.not_valid_after_utc,
        "pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "source": source,
    }


def _pem_files(paths: Iterable[Path | str]) -> list[x509.Certificate]:
    found = []
    for path in paths:
        try:
            found.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except FileNotFoundError:
            log.debug("Trust store file %s does not exist (yet)", path)
        except (OSError, ValueError) as error:
            log.warning("Trust store file %s cannot be read: %s", path, error)
    return found


@cache
def shipped_roots() -> tuple[x509.Certificate, ...]:
    return tuple(_pem_files(sorted(SHIPPED_DIR.glob("*.pem"))))


@cache
def shipped_intermediates() -> tuple[x509.Certificate, ...]:
    return tuple(_pem_files(sorted((SHIPPED_DIR / "intermediates").glob("*.pem"))))


def install_builtin_roots(**signal_kwargs: object) -> int:
    """Add the shipped roots that have no row yet (connected to post_migrate). A shipped root an
    administrator removed keeps its disabled row, so it is not brought back. Returns how many were added."""
    added = 0
    for certificate in shipped_roots():
        _, created = TrustedCA.objects.get_or_create(
            fingerprint_sha256=fingerprint(certificate),
            defaults=_row_values(certificate, TrustSource.BUILTIN),
        )
        added += created
    return added


def configured_roots() -> list[x509.Certificate]:
    """The roots in the PEM files that settings.TRUSTVIEW_TRUST_ROOTS_EXTRA names (missing files skipped)."""
    return _pem_files(settings.TRUSTVIEW_TRUST_ROOTS_EXTRA)


class TrustStore:
    """The trusted CAs, loaded once for a batch of checks (an import, a re-verification run)."""

    def __init__(self, anchors: Sequence[tuple[TrustedCA, x509.Certificate]]) -> None:
        self.anchors = {fingerprint(certificate): (row, certificate) for row, certificate in anchors}
        self._store = Store([c for _, c in anchors]) if anchors else None

    @classmethod
    def load(cls) -> TrustStore:
        """Enabled rows, except configured ones whose file is no longer configured; files named in the
        settings get their row here (so a certificate can point at the root it verified to)."""
        configured = {fingerprint(c): c for c in configured_roots()}
        rows = TrustedCA.objects.filter(fingerprint_sha256__in=configured)
        known = set(rows.values_list("fingerprint_sha256", flat=True))
        for key in configured.keys() - known:
            TrustedCA.objects.get_or_create(
                fingerprint_sha256=key, defaults=_row_values(configured[key], TrustSource.CONFIGURED)
            )
        anchors = []
        for row in TrustedCA.objects.filter(enabled=True):
            if row.source == TrustSource.CONFIGURED and row.fingerprint_sha256 not in configured:
                continue
            try:
                anchors.append((row, x509.load_pem_x509_certificate(row.pem.encode())))
            except ValueError:
                log.warning("Trusted CA %s cannot be read; it is left out", row.pk)
        return cls(anchors)

    def verify(self, certificate: x509.Certificate, candidates: Iterable[x509.Certificate] = ()) -> Verdict:
        """Whether signatures lead from `certificate` to a trusted CA. `candidates` are issuers that may
        complete the chain (the file's other certificates, a stored chain); they prove nothing themselves.

        Validity dates are checked at a moment when the certificate itself was valid, so an expired
        certificate still shows whether it was genuine. Never raises: anything odd is "not verified".
        """
        own = fingerprint(certificate)
        if own in self.anchors:
            return Verdict(self.anchors[own][0])
        pool = _unique([*candidates, *shipped_intermediates(), *_inventory_issuers(certificate)], own)
        if self._store is None:
            return Verdict(None, _signed_path(certificate, pool), EMPTY_STORE)
        try:
            verifier = (
                PolicyBuilder()
                .store(self._store)
                .time(_moment(certificate))
                .max_chain_depth(MAX_CHAIN_DEPTH)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=ExtensionPolicy.permit_all())
                .build_client_verifier()
            )
            chain = verifier.verify(certificate, pool).chain[1:]
        except Exception as error:  # a hostile certificate may fail in any way: not verified
            log.info("Chain of %s does not verify: %s", certificate.subject.rfc4514_string()[:200], error)
            return Verdict(None, _signed_path(certificate, pool), _why(certificate, pool, self))
        return Verdict(self.anchors[fingerprint(chain[-1])][0], chain)


def _key_cert_sign(policy: object, certificate: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA certificate whose key usage does not allow signing certificates")


# RFC 5280 path building with the checks that matter for trust (signatures, basicConstraints cA and path
# length, keyCertSign when key usage is present, validity, name constraints), without the Web PKI's
# demands on leaf certificates (subjectAltName, EKU): OCES3 certificates are not TLS server certificates.
_CA_POLICY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _key_cert_sign)
)


def _moment(certificate: x509.Certificate) -> dt.datetime:
    now = timezone.now()
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now > end:
        return end - dt.timedelta(seconds=1)
    if now < start:
        return start + dt.timedelta(seconds=1)
    return now


def _unique(certificates: Iterable[x509.Certificate], leave_out: str) -> list[x509.Certificate]:
    seen = {leave_out}
    result = []
    for certificate in certificates:
        key = fingerprint(certificate)
        if key not in seen:
            seen.add(key)
            result.append(certificate)
    return result


def _inventory_issuers(certificate: x509.Certificate) -> list[x509.Certificate]:
    """CA certificates in the inventory named as issuers above `certificate`, a few levels up."""
    found: list[x509.Certificate] = []
    names = {distinguished_name(certificate.issuer)}
    for _ in range(MAX_CHAIN_DEPTH):
        rows = Certificate.objects.filter(is_ca=True, subject_dn__in=names).values_list("pem", flat=True)
        level = []
        for pem in rows[: MAX_CANDIDATES_PER_NAME * len(names)]:
            try:
                level.append(x509.load_pem_x509_certificate(pem.encode()))
            except ValueError:
                continue
        names = {distinguished_name(c.issuer) for c in level if c.issuer != c.subject}
        found.extend(level)
        if not names:
            break
    return found


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key signed `certificate` (and its name is the one the certificate names)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _signed_path(certificate: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The issuers above `certificate` in `pool` as far as each signature verifies (a chain that is not
    trusted is still kept only where its links are genuine)."""
    chain: list[x509.Certificate] = []
    current = certificate
    while len(chain) < MAX_CHAIN_DEPTH and current.issuer != current.subject:
        parent = next((c for c in pool if c.subject == current.issuer and issued_by(current, c)), None)
        if parent is None or parent in chain:
            break
        chain.append(parent)
        current = parent
    return chain


def _why(certificate: x509.Certificate, pool: Sequence[x509.Certificate], store: TrustStore) -> str:
    if certificate.issuer == certificate.subject:
        return SELF_SIGNED
    named = [c for c in [*pool, *(c for _, c in store.anchors.values())] if c.subject == certificate.issuer]
    if not named:
        return ISSUER_UNKNOWN
    if not any(issued_by(certificate, c) for c in named):
        return BAD_SIGNATURE
    return NO_TRUSTED_PATH


# --- re-verification -----------------------------------------------------------------------------------


@dataclass
class ReverifyResult:
    checked: int = 0
    newly_verified: int = 0
    newly_unverified: int = 0


def reverify(certificate: Certificate, store: TrustStore) -> Verdict:
    """Check one stored certificate again (after the trust store changed), storing the verdict, and the
    verified chain when it verified. A certificate that now verifies joins its renewal chain."""
    from .services import SCHEDULER, link_renewal_chain

    try:
        parsed = load_pem_list(certificate.pem)[0]
        stored_chain = load_pem_list(certificate.chain_pem)
    except (ValueError, IndexError):
        parsed, stored_chain = None, []
    verdict = store.verify(parsed, stored_chain) if parsed is not None else Verdict(None, [], NO_TRUSTED_PATH)
    was_verified = certificate.chain_verified is True
    for name, value in verdict.columns().items():
        setattr(certificate, name, value)
    fields = [*verdict.columns(), "updated_at"]
    if verdict.verified:
        certificate.chain_pem = to_pem(verdict.chain)
        fields.append("chain_pem")
    certificate.save(update_fields=fields)
    if verdict.verified and not was_verified:
        link_renewal_chain(certificate, SCHEDULER)
    return verdict


def reverify_all(queryset: Any = None, *, batch_size: int = 200) -> ReverifyResult:
    """Re-verify certificates (all by default) in batches of `batch_size`, each batch one transaction."""
    store = TrustStore.load()
    queryset = Certificate.objects.all() if queryset is None else queryset
    pks = list(queryset.order_by("pk").values_list("pk", flat=True))
    result = ReverifyResult()
    for start in range(0, len(pks), batch_size):
        with transaction.atomic():
            batch = Certificate.objects.filter(pk__in=pks[start : start + batch_size]).order_by("pk")
            for certificate in batch:
                before = certificate.chain_verified is True
                after = reverify(certificate, store).verified
                result.checked += 1
                result.newly_verified += after and not before
                result.newly_unverified += before and not after
    return result


# --- administrators' changes ---------------------------------------------------------------------------


class TrustStoreError(ValueError):
    """A CA certificate that cannot be added; the message is a sentence for the administrator."""


def add_trusted_ca(data: bytes, actor: User | None) -> tuple[TrustedCA, ReverifyResult]:
    """Trust the CA certificate in `data` (PEM or DER, one certificate), then re-verify the certificates
    that were not verified. Raises TrustStoreError with a sentence for the administrator."""
    from django.utils.translation import gettext as _

    try:
        bundle = read_bundle(data)
    except CertificateFileError as error:
        raise TrustStoreError(str(error)) from None
    if len(bundle.certificates) != 1 or bundle.private_key is not None:
        raise TrustStoreError(_("Choose a file with exactly one CA certificate and no private key."))
    (certificate,) = bundle.certificates
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        is_ca = False
    if not is_ca:
        raise TrustStoreError(_("This is not a CA certificate, so it cannot be trusted as one."))
    row, created = TrustedCA.objects.get_or_create(
        fingerprint_sha256=fingerprint(certificate),
        defaults={**_row_values(certificate, TrustSource.ADDED), "added_by": actor},
    )
    if not created:
        if row.enabled and row.source != TrustSource.CONFIGURED:
            raise TrustStoreError(_("This CA is already in the trust store."))
        row.enabled = True
        row.save(update_fields=["enabled"])
    log.info("Trusted CA %s added by %s", row.fingerprint_sha256, actor)
    return row, reverify_all(Certificate.objects.exclude(chain_verified=True))


def remove_trusted_ca(row: TrustedCA, actor: User | None) -> ReverifyResult:
    """Stop trusting a CA, and re-verify the certificates that verified to it (another root may still
    vouch for them). A shipped root is disabled rather than deleted, so the next migrate leaves it out."""
    from django.utils.translation import gettext as _

    if row.source == TrustSource.CONFIGURED:
        raise TrustStoreError(_("This CA is configured in TRUSTVIEW_TRUST_ROOTS_EXTRA; remove it there."))
    affected = list(row.certificates.values_list("pk", flat=True))
    if row.source == TrustSource.BUILTIN:
        row.enabled = False
        row.save(update_fields=["enabled"])
    else:
        row.delete()
    log.info("Trusted CA %s removed by %s", row.fingerprint_sha256, actor)
    return reverify_all(Certificate.objects.filter(pk__in=affected))
