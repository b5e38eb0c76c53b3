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
import functools
import logging
from collections import defaultdict
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
from django.utils import timezone
from django.utils.translation import gettext_noop

from .choices import TrustSource
from .models import Certificate, TrustedCA
from .x509 import distinguished_name

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


@functools.lru_cache(maxsize=4096)  # an import asks it of each certificate several times (pool, anchors)
def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex().upper()


def trusted_ca_fields(certificate: x509.Certificate, source: TrustSource) -> dict[str, Any]:
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
            defaults=trusted_ca_fields(certificate, TrustSource.BUILTIN),
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
        # The inventory's CA certificates above an issuer name, looked up once per name for the batch: a
        # bundle of 1,000 leaves of one CA asks the database once, not 1,000 times.
        self._inventory_issuers: dict[x509.Name, list[x509.Certificate]] = {}
        self._anchor_subjects = {c.subject for _, c in self.anchors.values()}
        self._pools: dict[
            tuple[x509.Name, tuple[str, ...]], tuple[list[x509.Certificate], set[str], bool]
        ] = {}

    @classmethod
    def load(cls) -> TrustStore:
        """Enabled rows, except configured ones whose file is no longer configured; files named in the
        settings get their row here (so a certificate can point at the root it verified to)."""
        configured = {fingerprint(c): c for c in configured_roots()}
        rows = TrustedCA.objects.filter(fingerprint_sha256__in=configured)
        known = set(rows.values_list("fingerprint_sha256", flat=True))
        for key in configured.keys() - known:
            TrustedCA.objects.get_or_create(
                fingerprint_sha256=key, defaults=trusted_ca_fields(configured[key], TrustSource.CONFIGURED)
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
        pool, reaches = self._pool(certificate, candidates, own)
        if self._store is None:
            return Verdict(None, _signed_path(certificate, pool), EMPTY_STORE)
        if not reaches:
            # No chain of issuer names leads to a trusted CA, so no path can verify: say why without
            # asking the path builder, which explores every candidate to its depth limit first.
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "Chain of %s does not verify: no trusted CA above it",
                    certificate.subject.rfc4514_string()[:200],
                )
            return Verdict(None, _signed_path(certificate, pool), _why(certificate, pool, self))
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

    def _pool(
        self, certificate: x509.Certificate, candidates: Iterable[x509.Certificate], own: str
    ) -> tuple[list[x509.Certificate], bool]:
        """The issuers that may complete `certificate`'s chain (the candidates, the shipped intermediates
        and the inventory's CAs above its issuer name, itself left out), and whether their names reach
        a trusted CA. Both depend only on the issuer name and the candidates, so the leaves of one CA in
        a bundle share them: worked out once per batch, not once per leaf."""
        candidates = list(candidates)
        key = (certificate.issuer, tuple(fingerprint(c) for c in candidates))
        if key not in self._pools:
            if certificate.issuer not in self._inventory_issuers:
                self._inventory_issuers[certificate.issuer] = _inventory_issuers(certificate)
            pool = _unique(
                [*candidates, *shipped_intermediates(), *self._inventory_issuers[certificate.issuer]], ""
            )
            reaches = self._names_reach_an_anchor(certificate.issuer, pool)
            self._pools[key] = (pool, {fingerprint(c) for c in pool}, reaches)
        pool, fingerprints, reaches = self._pools[key]
        if own in fingerprints:  # a certificate is never its own issuer here
            pool = [c for c in pool if fingerprint(c) != own]
            reaches = self._names_reach_an_anchor(certificate.issuer, pool)
        return pool, reaches

    def _names_reach_an_anchor(self, issuer: x509.Name, pool: Sequence[x509.Certificate]) -> bool:
        """Whether issuer names lead from `issuer` (a certificate's) through `pool` to a trusted CA's
        subject (a path the verifier builds must follow them; signatures are its business)."""
        anchors = self._anchor_subjects
        by_subject: dict[x509.Name, list[x509.Certificate]] = defaultdict(list)
        for candidate in pool:
            by_subject[candidate.subject].append(candidate)
        names, seen = {issuer}, set()
        for _ in range(MAX_CHAIN_DEPTH):
            if names & anchors:
                return True
            seen |= names
            names = {c.issuer for name in names for c in by_subject.get(name, ())} - seen
            if not names:
                return False
        return bool(names & anchors)


class IssuerIndex:
    """A bundle's certificates by subject, so that each leaf's possible issuers are found by name: the
    path builder then sees the few certificates that can lie above a leaf, not every other certificate of
    the bundle (which made a bundle's verification quadratic in its size)."""

    def __init__(self, certificates: Iterable[x509.Certificate]) -> None:
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = defaultdict(list)
        for certificate in certificates:
            self._by_subject[certificate.subject].append(certificate)

    def above(self, certificate: x509.Certificate) -> list[x509.Certificate]:
        """The certificates named as issuer above `certificate`, level by level, up to MAX_CHAIN_DEPTH."""
        found: list[x509.Certificate] = []
        seen = {id(certificate)}
        names = {certificate.issuer} if certificate.issuer != certificate.subject else set()
        for _ in range(MAX_CHAIN_DEPTH):
            level = [c for name in names for c in self._by_subject.get(name, ()) if id(c) not in seen]
            if not level:
                break
            seen.update(id(c) for c in level)
            found.extend(level)
            names = {c.issuer for c in level if c.issuer != c.subject}
        return found


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


@functools.lru_cache(maxsize=1024)  # the chain and the reason for a failed one ask the same signature
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
