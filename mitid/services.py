"""Issuing OCES certificates from MitID Erhverv into the inventory."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext_noop

from certificates.choices import EventKind, OcesType, Source
from certificates.models import Certificate, organisation_limit
from certificates.services import Actor, ImportOutcome, store_bundle
from certificates.x509 import CertificateFileError, read_bundle

from .client import IssuedCertificate, MitIDClient
from .errors import MitIDError
from .models import CertificateProfile, ProfileType, normalise_reference

log = logging.getLogger(__name__)

# An administrator waits for the page: a short, bounded retry of transient failures, then a clear answer.
INTERACTIVE_ATTEMPTS = 3
INTERACTIVE_MAX_WAIT_SECONDS = 5.0


def client_for(environment: str) -> MitIDClient:
    """The client for one environment, configured from settings."""
    base_url = {"test": settings.MITID_TEST_URL, "production": settings.MITID_PRODUCTION_URL}[environment]
    timeout = settings.MITID_TIMEOUT_SECONDS
    return MitIDClient(
        base_url,
        environment=environment,
        ca_bundle=settings.MITID_CA_BUNDLE,
        timeout=(min(timeout, 10.0), timeout),
    )


def issue_idempotency_key(environment: str, reference_number: str, pin: str) -> str:
    """The same reference number and PIN always send the same Idempotency-Key.

    So a request whose answer was lost (a dropped connection, a double click, a retry) collects the same
    certificate instead of being refused as "reference used". Keyed with SECRET_KEY, so the header says
    nothing about the PIN.
    """
    message = f"issue\0{environment}\0{normalise_reference(reference_number)}\0{pin.strip().upper()}"
    return hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def issue_certificate(*, environment: str, reference_number: str, pin: str, actor: Actor) -> ImportOutcome:
    """Issue an OCES certificate with a profile's reference number and PIN, and store it with its key.

    Raises MitIDError (with a sentence for the user) when MitID Erhverv refuses or cannot be reached;
    then nothing is stored. The PIN is used for this one call and kept nowhere. `created` is False when
    this reference number and PIN had already brought the certificate in (a repeated submit).
    """
    allowed = _allowed_organisations(actor)
    if allowed is not None:
        # A profile the portal knows to be another organisation's: refused before the PIN is spent.
        known = CertificateProfile.objects.filter(
            environment=environment, reference_number=normalise_reference(reference_number)
        ).first()
        if known is not None and known.organization_id is not None and known.organization_id not in allowed:
            raise MitIDError("organisation_not_allowed", environment=environment)
    client = client_for(environment)
    key = issue_idempotency_key(environment, reference_number, pin)
    issued = _with_short_retries(lambda: client.issue(reference_number, pin, idempotency_key=key))
    try:
        bundle = read_bundle(issued.pkcs12, issued.password)
    except CertificateFileError:
        log.error("MitID Erhverv (%s) returned a PKCS#12 that cannot be read", environment)
        raise MitIDError("unexpected_response", environment=environment) from None
    with transaction.atomic():
        (outcome,) = store_bundle(
            bundle,
            source=Source.MITID,
            actor=actor,
            event_kind=EventKind.ISSUED,
            message=gettext_noop(
                "Issued by MitID Erhverv (%(environment)s) with reference number %(reference)s."
            ),
            environment=environment,
            reference=reference_number,
        )
        certificate = outcome.certificate
        if allowed is not None and certificate.organization_id not in allowed:
            # Nothing is stored (the transaction rolls back); MitID Erhverv hands the same certificate to
            # whoever sends the same reference number and PIN again (an unlimited administrator).
            raise MitIDError("organisation_not_allowed", environment=environment)
        _link_profile(certificate, environment, reference_number)
    log.info("Issued certificate %s from MitID Erhverv (%s)", certificate.serial_number, environment)
    return outcome


def _allowed_organisations(actor: Actor) -> set[int] | None:
    """The organisations (ids) a limited user may issue for, as import allows; None: any."""
    limit = organisation_limit(actor) if isinstance(actor, User) else None
    return None if limit is None else set(limit.values_list("pk", flat=True))


def _with_short_retries(call: Callable[[], IssuedCertificate]) -> IssuedCertificate:
    for attempt in range(1, INTERACTIVE_ATTEMPTS + 1):
        try:
            return call()
        except MitIDError as error:
            if not error.transient or attempt == INTERACTIVE_ATTEMPTS:
                raise
            wait = min(error.retry_after or 0.5 * attempt, INTERACTIVE_MAX_WAIT_SECONDS)
            log.warning("MitID Erhverv answered %s; trying again in %.1f s", error.code, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _link_profile(certificate: Certificate, environment: str, reference_number: str) -> None:
    """Attach the certificate to its profile, creating the profile from the certificate if it is new."""
    profile, _ = CertificateProfile.objects.get_or_create(
        environment=environment,
        reference_number=normalise_reference(reference_number),
        defaults={
            "name": certificate.subject_cn,
            "organization": certificate.organization,
            "type": ProfileType.EMPLOYEE
            if certificate.oces_type == OcesType.EMPLOYEE
            else ProfileType.ORGANISATION,
        },
    )
    profile.certificates.add(certificate)
