"""Work on the inventory that spans objects: importing certificate files, the history, renewal links.

Called alike from views, management commands, tasks and tests.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.translation import gettext, gettext_noop

from . import bulk, signals, vault
from .choices import EventKind, LifecycleState, Source
from .models import (
    Certificate,
    CertificateContact,
    Event,
    MetricCounter,
    Organization,
    organisation_limit,
    renewal_due_at,
)
from .trust import IssuerIndex, TrustStore, Verdict, issued_by
from .x509 import (
    Bundle,
    CertificateFacts,
    CertificateFileError,
    PrivateKey,
    describe,
    key_owner,
    leaves,
    load_pem_list,
    read_bundle,
    storable,
    to_pem,
)

log = logging.getLogger(__name__)

Actor = User | AnonymousUser | str | None
SCHEDULER = "scheduler"


def record_event(
    certificate: Certificate, kind: EventKind, actor: Actor, message: str, **detail: Any
) -> Event:
    """Append one entry to a certificate's history. `actor` is a user, or a label such as "scheduler"."""
    user = actor if isinstance(actor, User) else None
    label = actor if isinstance(actor, str) else (user.get_username() if user is not None else "system")
    return Event.objects.create(
        certificate=certificate, kind=kind, actor=user, actor_label=label, message=message, detail=detail
    )


@dataclass
class ImportOutcome:
    """What importing did with one certificate of a file."""

    certificate: Certificate
    created: bool
    key_added: bool = False
    renewal_of: Certificate | None = None

    @property
    def message(self) -> str:
        values = {
            "name": self.certificate.subject_cn,
            "serial": self.certificate.serial_number_display,
            "date": _date(self.certificate),
        }
        if not self.created:
            text = gettext("Already present: “%(name)s” (serial %(serial)s).") % values
            return text + (" " + gettext("Its private key has been added.") if self.key_added else "")
        text = gettext("Imported “%(name)s”, valid to %(date)s.") % values
        if self.renewal_of is not None:
            text += " " + gettext(
                "It is the renewal of the certificate valid to %(date)s, which is now superseded."
            ) % {"date": _date(self.renewal_of)}
        if self.certificate.has_private_key:
            text += " " + gettext("Its private key is stored encrypted.")
        return text

    @property
    def warning(self) -> str | None:
        """A sentence to show beside the message when the new certificate may lapse unnoticed."""
        template = short_life_warning(self.certificate) if self.created else None
        return gettext(template) % _short_life_detail(self.certificate) if template else None


def _date(certificate: Certificate) -> str:
    return date_format(timezone.localtime(certificate.not_after), "Y-m-d")


def import_certificate_file(
    data: bytes, *, password: str | None = None, actor: Actor = None, filename: str = ""
) -> list[ImportOutcome]:
    """Import every certificate a file is about (its leaves), with its chain and matching private key.

    All or nothing: raises CertificateFileError with a sentence for the user, and then stores nothing.
    The same certificate twice is one certificate; one with the OCES UUID of a stored certificate is
    linked into that certificate's renewal chain.
    Every refused file adds one to the import-errors counter that /metrics reports.
    """
    try:
        return _import_certificate_file(data, password=password, actor=actor, filename=filename)
    except CertificateFileError:
        _count_import_error()
        raise


def _count_import_error() -> None:
    """Count a refused file for /metrics; a counting problem never hides the sentence for the user."""
    try:
        with transaction.atomic():
            MetricCounter.increment(MetricCounter.IMPORT_ERRORS)
    except DatabaseError:
        log.warning("Could not count a refused import for /metrics (is the database migrated?).")


def _import_certificate_file(
    data: bytes, *, password: str | None, actor: Actor, filename: str
) -> list[ImportOutcome]:
    limit = settings.TRUSTVIEW_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise CertificateFileError(
            gettext(
                "The file is larger than %(size)s KiB, too large for a certificate file. "
                "Choose the certificate file itself."
            )
            % {"size": limit // 1024}
        )
    bundle = read_bundle(data, password)
    filename = storable(filename)[:255]  # a name chosen by the uploader, kept in the history's JSON
    with transaction.atomic():
        outcomes = store_bundle(
            bundle,
            source=Source.IMPORT,
            actor=actor,
            event_kind=EventKind.IMPORTED,
            message=gettext_noop("Imported from “%(filename)s”.") if filename else gettext_noop("Imported."),
            filename=filename,
        )
        if isinstance(actor, User):
            _refuse_other_organisations(outcomes, actor)
    return outcomes


def _refuse_other_organisations(outcomes: list[ImportOutcome], user: User) -> None:
    """A user limited to some organisations may import only their certificates: otherwise the whole
    file is refused (the caller's transaction rolls back what was stored)."""
    limit = organisation_limit(user)
    if limit is None:
        return
    allowed = set(limit.values_list("pk", flat=True))
    if any(outcome.certificate.organization_id not in allowed for outcome in outcomes):
        raise CertificateFileError(
            gettext(
                "This file holds a certificate of an organisation your account is not limited to, so "
                "nothing of it was imported. Ask an administrator to import it."
            )
        )


def store_bundle(
    bundle: Bundle, *, source: Source, actor: Actor, event_kind: EventKind, message: str, **detail: Any
) -> list[ImportOutcome]:
    """Store the certificates a bundle is about (its leaves), each with its chain and, if it is in the
    bundle, its private key; one transaction. Used by import and by every issuer (a CA's PKCS#12).
    `message` is the history entry's English template, `detail` its fields (see Event.text).

    The work is linear in the bundle: each leaf's issuers are looked up by name (IssuerIndex), the
    certificates already present are found with one query, the new ones and their organisations and
    history entries are inserted in bulk under one savepoint, and only OCES certificates that verified
    (the ones that can be part of a renewal chain) are linked one by one."""
    owner = key_owner(bundle)
    issuers = IssuerIndex(bundle.certificates)
    with transaction.atomic():
        store = TrustStore.load()
        checked = [
            (leaf, store.verify(leaf, issuers.above(leaf)), bundle.private_key if leaf is owner else None)
            for leaf in leaves(bundle)
        ]
        facts = [describe(leaf) for leaf, _verdict, _key in checked]
        present = Certificate.objects.in_bulk(
            [f.fingerprint_sha256 for f in facts], field_name="fingerprint_sha256"
        )
        new = [(f, verdict, key) for f, (_leaf, verdict, key) in zip(facts, checked, strict=True)]
        new = [item for item in new if item[0].fingerprint_sha256 not in present]
        try:
            with transaction.atomic():
                created = _add_certificates(new, source=source)
        except IntegrityError:
            # Someone stored one of them between our look-up and our insert: one by one, as then each
            # present one is simply completed.
            return [
                _store(
                    leaf,
                    verdict=verdict,
                    key=key,
                    source=source,
                    actor=actor,
                    event_kind=event_kind,
                    message=message,
                    detail=detail,
                )
                for leaf, verdict, key in checked
            ]
        _record_added(created, actor, event_kind, message, detail)
        outcomes = []
        for f, (_leaf, verdict, key) in zip(facts, checked, strict=True):
            if f.fingerprint_sha256 in present:
                outcomes.append(
                    _complete_existing(present[f.fingerprint_sha256], verdict=verdict, key=key, actor=actor)
                )
            else:
                certificate = created[f.fingerprint_sha256]
                renewal_of = link_renewal_chain(certificate, actor)
                outcomes.append(ImportOutcome(certificate, created=True, renewal_of=renewal_of))
        return outcomes


def _add_certificates(
    new: list[tuple[CertificateFacts, Verdict, PrivateKey | None]], *, source: Source
) -> dict[str, Certificate]:
    """Insert the rows of new certificates (and the organisations they name by CVR) in bulk; by
    fingerprint. The rows are made as add_certificate makes one, renew_at included."""
    if not new:
        return {}
    organisations = _organisations({f.cvr: f.subject_organization for f, _v, _k in reversed(new) if f.cvr})
    rows = []
    for f, verdict, key in new:
        row = _certificate_row(
            f,
            organization=organisations.get(f.cvr),
            chain_pem=to_pem(verdict.chain),
            key=key,
            source=source,
            **verdict.columns(),
        )
        row.renew_at = renewal_due_at(row.not_before, row.not_after, row.renew_before)
        rows.append(row)
    bulk.insert(rows, id_by="fingerprint_sha256")
    return {c.fingerprint_sha256: c for c in rows}


def _organisations(names_by_cvr: dict[str, str]) -> dict[str, Organization]:
    """The organisations with these CVRs, the missing ones created (named as their certificate says)."""
    if not names_by_cvr:
        return {}
    found = Organization.objects.in_bulk(list(names_by_cvr), field_name="cvr")
    missing = [
        Organization(cvr=cvr, name=_fit(Organization, "name", name))
        for cvr, name in names_by_cvr.items()
        if cvr not in found
    ]
    if missing:
        Organization.objects.bulk_create(missing, ignore_conflicts=True)  # another import may add one too
        found = Organization.objects.in_bulk(list(names_by_cvr), field_name="cvr")
    return found


def _record_added(
    created: dict[str, Certificate], actor: Actor, kind: EventKind, message: str, detail: dict[str, Any]
) -> None:
    """The history entries of newly stored certificates (and of a too short renewal window), in bulk.
    No receiver listens for these kinds (a bulk insert sends no post_save); record_event makes the rest."""
    user = actor if isinstance(actor, User) else None
    label = actor if isinstance(actor, str) else (user.get_username() if user is not None else "system")
    user_id = user.pk if user is not None else None
    events = []
    for certificate in created.values():
        values = {"with_private_key": certificate.has_private_key, **detail}
        events.append(  # by ids: the related-object descriptors cost more than the rest of the row
            Event(
                certificate_id=certificate.pk,
                kind=kind,
                actor_id=user_id,
                actor_label=label,
                message=message,
                detail=values,
            )
        )
        warning = short_life_warning(certificate)
        if warning is not None:
            events.append(
                Event(
                    certificate_id=certificate.pk,
                    kind=EventKind.WARNING,
                    actor_id=user_id,
                    actor_label=label,
                    message=warning,
                    detail=_short_life_detail(certificate),
                )
            )
    bulk.insert(events)


def _store(
    leaf: cx509.Certificate,
    *,
    verdict: Verdict,
    key: PrivateKey | None,
    source: Source,
    actor: Actor,
    event_kind: EventKind,
    message: str,
    detail: dict[str, Any],
) -> ImportOutcome:
    """Store one leaf with the issuers whose signatures verified (verdict.chain): a file's certificate
    that did not sign the leaf is never stored as its chain."""
    facts = describe(leaf)
    existing = Certificate.objects.filter(fingerprint_sha256=facts.fingerprint_sha256).first()
    if existing is not None:
        return _complete_existing(existing, verdict=verdict, key=key, actor=actor)
    try:
        with transaction.atomic():
            certificate = add_certificate(
                facts, chain_pem=to_pem(verdict.chain), key=key, source=source, **verdict.columns()
            )
    except IntegrityError:
        # Stored by someone else between our look-up and our insert: then it is simply present.
        existing = Certificate.objects.get(fingerprint_sha256=facts.fingerprint_sha256)
        return _complete_existing(existing, verdict=verdict, key=key, actor=actor)
    record_event(certificate, event_kind, actor, message, with_private_key=key is not None, **detail)
    warning = short_life_warning(certificate)
    if warning is not None:
        record_event(certificate, EventKind.WARNING, actor, warning, **_short_life_detail(certificate))
    renewal_of = link_renewal_chain(certificate, actor)
    return ImportOutcome(certificate, created=True, renewal_of=renewal_of)


def short_life_warning(certificate: Certificate) -> str | None:
    """An English sentence (with fields, see Event.text) when the certificate's renewal window, from its
    renewal being due to its expiry, is shorter than the interval between renewal sweeps: the sweep may
    then never see it due, and it would expire unrenewed. None otherwise (and for expired ones)."""
    if certificate.renew_at is None or certificate.not_after <= timezone.now():
        return None
    window = certificate.not_after - certificate.renew_at
    if window.total_seconds() >= settings.TRUSTVIEW_SWEEP_SECONDS:
        return None
    return gettext_noop(
        "Its renewal window (%(window)s seconds before expiry) is shorter than the interval between "
        "renewal sweeps (%(sweep)s seconds): the portal may not renew it in time. Renew it by hand, or "
        "run the sweep more often (TRUSTVIEW_SWEEP_SECONDS)."
    )


def _short_life_detail(certificate: Certificate) -> dict[str, int]:
    assert certificate.renew_at is not None
    return {
        "window": round((certificate.not_after - certificate.renew_at).total_seconds()),
        "sweep": round(settings.TRUSTVIEW_SWEEP_SECONDS),
    }


def add_certificate(
    facts: CertificateFacts, *, chain_pem: str, key: PrivateKey | None, source: Source, **extra: Any
) -> Certificate:
    """Create the inventory row for a parsed certificate (and its organisation, found by CVR)."""
    organization = None
    if facts.cvr:
        organization, _ = Organization.objects.get_or_create(
            cvr=facts.cvr, defaults={"name": _fit(Organization, "name", facts.subject_organization)}
        )
    certificate = _certificate_row(
        facts, organization=organization, chain_pem=chain_pem, key=key, source=source, **extra
    )
    certificate.save(force_insert=True)
    return certificate


def _certificate_row(
    facts: CertificateFacts,
    *,
    organization: Organization | None,
    chain_pem: str,
    key: PrivateKey | None,
    source: Source,
    **extra: Any,
) -> Certificate:
    columns = {name: _cut(getattr(facts, name), limit) for name, limit in _FACT_COLUMNS}
    return Certificate(
        **columns,
        organization=organization,
        chain_pem=chain_pem,
        private_key_encrypted=vault.seal(key) if key is not None else "",
        source=source,
        **extra,
    )


# The facts stored as columns, with the column's max_length where text is cut to fit (see _fit).
_FACT_COLUMNS = [
    (field.name, getattr(field, "max_length", None))
    for field in Certificate._meta.get_fields()
    if field.name in CertificateFacts.__dataclass_fields__
]


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last an ellipsis when it was cut.

    PostgreSQL refuses a value longer than its column where SQLite stores it whole; shortening here
    stores the same on both. Certificates allow longer names than the columns (a 300-character O).
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(value: Any, limit: int | None) -> Any:
    return shorten(value, limit) if limit and isinstance(value, str) else value


def _fit(model: type[models.Model], name: str, value: Any) -> Any:
    """Text longer than its column, shortened; anything else as it is.

    Only display text is ever cut: describe() refuses identifiers that do not fit, and the whole names
    stay in subject_dn and issuer_dn (TextFields).
    """
    return _cut(value, _max_length(model, name))


@functools.cache
def _max_length(model: type[models.Model], name: str) -> int | None:
    """A column's max_length (asked for every text column of every imported certificate)."""
    return getattr(model._meta.get_field(name), "max_length", None)


def _complete_existing(
    certificate: Certificate, *, verdict: Verdict, key: PrivateKey | None, actor: Actor
) -> ImportOutcome:
    """A certificate already in the inventory: keep it, but add a key or chain it did not have yet, and
    the verified chain when this file brought the issuer it lacked."""
    key_added = False
    if key is not None and not certificate.has_private_key:
        certificate.private_key_encrypted = vault.seal(key)
        certificate.save(update_fields=["private_key_encrypted", "updated_at"])
        record_event(
            certificate, EventKind.KEY_ADDED, actor, gettext_noop("Private key added by a new import.")
        )
        key_added = True
    if verdict.verified and certificate.chain_verified is not True:
        columns = verdict.columns()
        for name, value in columns.items():
            setattr(certificate, name, value)
        certificate.chain_pem = to_pem(verdict.chain)
        certificate.save(update_fields=[*columns, "chain_pem", "updated_at"])
        link_renewal_chain(certificate, actor)
    elif verdict.chain and not certificate.chain_pem:
        certificate.chain_pem = to_pem(verdict.chain)
        certificate.save(update_fields=["chain_pem", "updated_at"])
    return ImportOutcome(certificate, created=False, key_added=key_added)


def link_renewal_chain(certificate: Certificate, actor: Actor) -> Certificate | None:
    """Order every certificate with this one's OCES UUID by validity and link each to the one before.

    All but the newest become superseded (blocked ones stay blocked); the newest is active. Works in
    whatever order the certificates arrived. Returns the certificate this one renews, if any.

    Only certificates whose chain verified to the same trusted root take part: a look-alike with the same
    UUID and a later expiry but no genuine signature is never linked and supersedes nothing.
    """
    if certificate.oces_uuid is None or not certificate.chain_verified or certificate.trust_root_id is None:
        return None
    members = list(
        Certificate.objects.select_for_update()
        .filter(
            oces_uuid=certificate.oces_uuid,
            environment=certificate.environment,
            chain_verified=True,
            trust_root_id=certificate.trust_root_id,
        )
        .order_by("not_before", "not_after", "id")
    )
    predecessor = {m.pk: prev for prev, m in zip([None, *members[:-1]], members, strict=True)}
    relinked = [m for m in members if m.renewed_from_id != _pk(predecessor[m.pk])]
    # Clear first: renewed_from is one-to-one, and a re-ordered chain would collide half-way. A certificate
    # outside the verified members (one no longer verified) lets go of a member it pointed at, too.
    member_pks = [m.pk for m in members]
    Certificate.objects.filter(renewed_from__in=member_pks).exclude(pk__in=member_pks).update(
        renewed_from=None
    )
    Certificate.objects.filter(pk__in=[m.pk for m in relinked]).update(renewed_from=None)
    for member in relinked:
        member.renewed_from = predecessor[member.pk]
        member.save(update_fields=["renewed_from", "updated_at"])
    newest = members[-1]
    for member in members:
        successor = next((m for m in members if predecessor[m.pk] == member), None)
        if member is not newest and member.state == LifecycleState.ACTIVE and successor is not None:
            member.state = LifecycleState.SUPERSEDED
            member.save(update_fields=["state", "updated_at"])
            record_event(
                member,
                EventKind.RENEWED,
                actor,
                gettext_noop("Superseded by its renewal, serial %(serial)s, valid to %(date)s."),
                serial=successor.serial_number_display,
                date=_date(successor),
                replaced_by=successor.pk,
            )
            signals.certificate_superseded.send(sender=Certificate, old=member, new=successor)
        elif member is newest and member.state == LifecycleState.SUPERSEDED:
            member.state = LifecycleState.ACTIVE
            member.save(update_fields=["state", "updated_at"])
    return predecessor[certificate.pk]


def _pk(certificate: Certificate | None) -> int | None:
    return certificate.pk if certificate is not None else None


@dataclass
class ChainLink:
    """One issuer above a certificate; `pk` is set when that issuer is in the inventory too."""

    subject_cn: str
    subject_dn: str
    not_after: dt.datetime
    pk: int | None = None


MAX_CHAIN_DEPTH = 5


def issuer_chain(certificate: Certificate) -> list[ChainLink]:
    """The issuers of one certificate, nearest first, for its page.

    From the chain stored with it when there is one (linked to inventory entries by fingerprint);
    otherwise by walking up the inventory by key identifier (a CA imported on its own is found).
    """
    try:
        stored = [describe(c) for c in load_pem_list(certificate.chain_pem)]
    except Exception:  # a damaged stored chain must not take the page down: walk instead
        log.warning("Stored chain of certificate %s cannot be read", certificate.pk)
        stored = []
    if stored:
        known = dict(
            Certificate.objects.filter(
                fingerprint_sha256__in=[f.fingerprint_sha256 for f in stored]
            ).values_list("fingerprint_sha256", "pk")
        )
        return [
            ChainLink(f.subject_cn, f.subject_dn, f.not_after, known.get(f.fingerprint_sha256))
            for f in stored
        ]
    links: list[ChainLink] = []
    current = certificate
    while (
        len(links) < MAX_CHAIN_DEPTH and current.authority_key_id and current.issuer_dn != current.subject_dn
    ):
        candidates = Certificate.objects.filter(
            subject_key_id=current.authority_key_id, subject_dn=current.issuer_dn
        ).exclude(pk=current.pk)[:MAX_CHAIN_DEPTH]
        # A CA certificate with the right names but another key (a forgery) is not this one's issuer.
        parent = next((c for c in candidates if _signed_by(current, c)), None)
        if parent is None:
            break
        links.append(ChainLink(parent.subject_cn, parent.subject_dn, parent.not_after, parent.pk))
        current = parent
    return links


def _signed_by(child: Certificate, parent: Certificate) -> bool:
    try:
        return issued_by(load_pem_list(child.pem)[0], load_pem_list(parent.pem)[0])
    except (ValueError, IndexError):
        return False


# --- downloads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkcs12Export:
    """A PKCS#12 made for one download, with the fresh password that opens it (shown once)."""

    filename: str
    data: bytes = field(repr=False)
    password: str = field(repr=False)


def export_pkcs12(certificate: Certificate, actor: Actor) -> Pkcs12Export:
    """Package the certificate, its chain and its private key as PKCS#12 under a new random password.

    AES-256 with PBKDF2 and an SHA-256 MAC, which OpenSSL 3 and current Windows and macOS open. The
    password is returned to be shown once and is stored nowhere; the download is written to the history.
    """
    if not certificate.has_private_key:
        raise ValueError(gettext("The portal holds no private key for this certificate (monitor only)."))
    key = vault.unseal(certificate.private_key_encrypted)
    password = secrets.token_urlsafe(15)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    data = pkcs12.serialize_key_and_certificates(
        certificate.subject_cn.encode(),
        key,
        load_pem_list(certificate.pem)[0],
        load_pem_list(certificate.chain_pem) or None,
        encryption,
    )
    record_event(
        certificate, EventKind.KEY_DOWNLOADED, actor, gettext_noop("Private key downloaded as PKCS#12.")
    )
    return Pkcs12Export(filename=f"{download_name(certificate)}.p12", data=data, password=password)


_DANISH_LETTERS = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa"})


def download_name(certificate: Certificate) -> str:
    """A file name for downloads: the common name in plain letters, and the serial's start."""
    slug = slugify(certificate.subject_cn.translate(_DANISH_LETTERS))[:60] or "certificate"
    return f"{slug}-{certificate.serial_number[:8].lower()}"


def change_renewal_settings(
    certificate: Certificate, *, auto_renew: bool, renew_before_days: int, actor: Actor
) -> bool:
    """Set auto-renew and renew-before, writing the change to the history. Returns whether it changed."""
    renew_before = dt.timedelta(days=renew_before_days)
    if (certificate.auto_renew, certificate.renew_before) == (auto_renew, renew_before):
        return False
    with transaction.atomic():
        certificate.auto_renew, certificate.renew_before = auto_renew, renew_before
        certificate.save(update_fields=["auto_renew", "renew_before", "updated_at"])
        record_event(
            certificate,
            EventKind.SETTINGS_CHANGED,
            actor,
            gettext_noop("Automatic renewal on, %(days)s days before expiry.")
            if auto_renew
            else gettext_noop("Automatic renewal off, %(days)s days before expiry."),
            days=renew_before_days,
        )
    return True


def set_contacts(certificate: Certificate, addresses: list[str], actor: Actor) -> bool:
    """Make `addresses` the certificate's own contacts (they receive its alerts besides the portal's
    recipients), and write the change to its history. Returns False when nothing changed."""
    with transaction.atomic():
        current = set(
            CertificateContact.objects.filter(certificate=certificate).values_list("email", flat=True)
        )
        wanted = list(dict.fromkeys(addresses))
        if current == set(wanted):
            return False
        CertificateContact.objects.filter(certificate=certificate).exclude(email__in=wanted).delete()
        CertificateContact.objects.bulk_create(
            [CertificateContact(certificate=certificate, email=a) for a in wanted if a not in current]
        )
        record_event(
            certificate,
            EventKind.CONTACTS_CHANGED,
            actor,
            gettext_noop("Contacts: %(contacts)s."),
            contacts=", ".join(wanted) or "-",
        )
    return True
