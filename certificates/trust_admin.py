"""Changes to the trust store and what follows from them: re-verifying stored certificates (and linking
those that now verify into their renewal chain), and the administrator's add and remove. Above
services.py, since re-verification links renewals; trust.py itself only verifies."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from .choices import TrustSource
from .models import Certificate, TrustedCA
from .services import SCHEDULER, link_renewal_chain
from .signals import trust_store_changed
from .trust import NO_TRUSTED_PATH, TrustStore, Verdict, fingerprint, trusted_ca_fields
from .x509 import CertificateFileError, load_pem_list, read_bundle, to_pem

log = logging.getLogger(__name__)


@dataclass
class ReverifyResult:
    checked: int = 0
    newly_verified: int = 0
    newly_unverified: int = 0


def reverify(certificate: Certificate, store: TrustStore) -> Verdict:
    """Check one stored certificate again (after the trust store changed), storing the verdict, and the
    verified chain when it verified. A certificate that now verifies joins its renewal chain."""
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
        defaults={**trusted_ca_fields(certificate, TrustSource.ADDED), "added_by": actor},
    )
    if not created:
        if row.enabled and row.source != TrustSource.CONFIGURED:
            raise TrustStoreError(_("This CA is already in the trust store."))
        row.enabled = True
        row.save(update_fields=["enabled"])
    log.info("Trusted CA %s added by %s", row.fingerprint_sha256, actor)
    trust_store_changed.send(TrustedCA, trusted_ca=row, actor=actor, change="added")
    return row, reverify_all(Certificate.objects.exclude(chain_verified=True))


def remove_trusted_ca(row: TrustedCA, actor: User | None) -> ReverifyResult:
    """Stop trusting a CA, and re-verify the certificates that verified to it (another root may still
    vouch for them). A shipped root is disabled rather than deleted, so the next migrate leaves it out."""
    if row.source == TrustSource.CONFIGURED:
        raise TrustStoreError(_("This CA is configured in TRUSTVIEW_TRUST_ROOTS_EXTRA; remove it there."))
    affected = list(row.certificates.values_list("pk", flat=True))
    if row.source == TrustSource.BUILTIN:
        row.enabled = False
        row.save(update_fields=["enabled"])
    else:
        row.delete()
    log.info("Trusted CA %s removed by %s", row.fingerprint_sha256, actor)
    trust_store_changed.send(TrustedCA, trusted_ca=row, actor=actor, change="removed")
    return reverify_all(Certificate.objects.filter(pk__in=affected))
