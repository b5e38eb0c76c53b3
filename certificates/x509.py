"""Reading certificate files and the OCES3 fields inside certificates.

A file is read once, when it enters the system: `read_bundle` turns PEM (one or several blocks, any
order), DER or PKCS#12 bytes into certificates and an optional private key, and `describe` turns one
certificate into the flat facts the inventory stores as indexed columns. Every failure is a
`CertificateFileError` whose message is a sentence for the person who chose the file; none of them
repeats a password or key material.

Files come from anyone with an account, so reading is bounded: PEM blocks are found by a linear scan, a
file holds at most TRUSTVIEW_IMPORT_MAX_CERTIFICATES certificates, password-based key derivations are
counted before OpenSSL runs them (certificates.der), and whatever cryptography raises while reading a
field becomes a sentence. Text is made storable here (no NUL, no lone surrogates), the same on every
database; fitting it to column lengths is the inventory's business (services.add_certificate).
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID, SignatureAlgorithmOID
from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import der

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise as StrPromise

PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)

# OCES (Danish public certificates): policy arcs under 1.2.208.169.1.1.1, matched by prefix because the
# last arcs carry the policy version (1.2.208.169.1.1.1.3.7, ...3.7.1).
OCES_POLICY_ARC = "1.2.208.169.1.1.1."
OCES_TYPE_BY_ARC = {
    "1": "person",
    "2": "employee",
    "3": "organisation",
    "4": "system",  # OCES2 FOCES; in OCES3 system certificates are organisation certificates
}
OCES_TEST_ISSUER_OU = "Test - cti"
_OCES3_UUID = re.compile(r"^UI:DK-[A-Z]+:G:([0-9a-fA-F-]{36})$")
_OCES3_CVR = re.compile(r"^NTRDK-(\d{8})$")
_OCES2_CVR = re.compile(r"CVR:(\d{8})(?:\D|$)")

_PEM_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
_PEM_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PEM_LABELS = _PEM_KEY_LABELS | _PEM_CERT_LABELS | {b"PKCS7"}
_PEM_LONGEST_LABEL = max(len(label) for label in _PEM_LABELS)
# Identifiers that do not fit their columns are refused rather than cut: a cut serial number or key
# identifier would name another certificate. RFC 5280 allows 20 bytes of serial; key identifiers are hashes.
MAX_SERIAL_BYTES = 32
MAX_KEY_ID_BYTES = 64
# How many times the per-derivation iteration cap a whole file may ask for (MAC, certificates, keys).
ITERATIONS_IN_ALL_FACTOR = 3

logger = logging.getLogger(__name__)
_PKCS7_DATA_OID_DER = bytes.fromhex("06092a864886f70d010701")  # OID 1.2.840.113549.1.7.1 (pkcs7-data)


class CertificateFileError(ValueError):
    """A file that cannot be imported; the message is the sentence shown to the user.

    `field` says which input the sentence is about ("file" or "password"), so a form can put it there.
    """

    def __init__(self, message: str | StrPromise, field: str = "file") -> None:
        super().__init__(str(message))
        self.field = field


@dataclass
class Bundle:
    """What a file held: its certificates (deduplicated, in file order) and at most one private key."""

    certificates: list[x509.Certificate]
    private_key: PrivateKey | None = None


@dataclass
class CertificateFacts:
    """Everything the inventory stores about one certificate, parsed once."""

    subject_cn: str
    subject_dn: str
    subject_organization: str
    issuer_cn: str
    issuer_dn: str
    serial_number: str
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_size: int | None
    signature_algorithm: str
    is_ca: bool
    subject_key_id: str
    authority_key_id: str
    subject_alt_names: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    ocsp_urls: list[str] = field(default_factory=list)
    crl_urls: list[str] = field(default_factory=list)
    cvr: str = ""
    oces_uuid: uuid.UUID | None = None
    oces_type: str = ""
    environment: str = ""
    pem: str = ""


# --- reading files -------------------------------------------------------------------------------------


def read_bundle(data: bytes, password: str | None = None) -> Bundle:
    """Read certificates and an optional private key from PEM, DER or PKCS#12 bytes.

    Raises CertificateFileError with a sentence for the user when the file is not a certificate, is
    damaged, needs a (different) password, or holds a key that belongs to none of its certificates.
    """
    if not data.strip():
        raise CertificateFileError(_("The file is empty."))
    bundle = _read_pem(data, password) if b"-----BEGIN " in data else _read_binary(data, password)
    if not bundle.certificates:
        if bundle.private_key is not None:
            raise CertificateFileError(
                _("The file holds a private key but no certificate. Import the certificate with it.")
            )
        raise CertificateFileError(_NOT_A_CERTIFICATE)
    _check_count(len(bundle.certificates))
    bundle.certificates = _unique(bundle.certificates)
    for certificate in bundle.certificates:
        describe(certificate)  # every field read once now, so a bad one is refused before anything is stored
    if bundle.private_key is not None and key_owner(bundle) is None:
        raise CertificateFileError(_("The private key in the file does not belong to the certificate."))
    return bundle


_NOT_A_CERTIFICATE = gettext_lazy(
    "The file is not a certificate. Choose a PEM, DER or PKCS#12 file (.pem, .crt, .cer, .der, .p12, .pfx)."
)
_DAMAGED = gettext_lazy(
    "The file is damaged: it looks like a certificate file but cannot be read. Export it again."
)
_BAD_VERSION = gettext_lazy(
    "A certificate in the file has an X.509 version that does not exist (there are versions 1 to 3), "
    "so it cannot be imported."
)
_UNREADABLE_FIELD = gettext_lazy(
    "A certificate in the file has a field that cannot be read, so it cannot be imported. "
    "Export it again, or ask its issuer."
)
_OVERLONG_IDENTIFIER = gettext_lazy(
    "A certificate in the file has a serial number or key identifier far longer than X.509 allows, "
    "so it cannot be imported."
)


def _check_count(count: int) -> None:
    limit = settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES
    if count > limit:
        raise CertificateFileError(
            _(
                "The file holds more than %(limit)s certificates. Import at most %(limit)s certificates "
                "in one file; nothing from this file has been imported."
            )
            % {"limit": limit}
        )


def _check_iterations(counts: list[int]) -> None:
    """Refuse, before OpenSSL derives anything, a file that asks for more iterations than tools write.

    OpenSSL 3 writes 2,048 per derivation and this portal's own exports 100,000; each derivation may ask
    for up to TRUSTVIEW_IMPORT_MAX_ITERATIONS, and the whole file (MAC, certificates, keys) for a few
    times that, so a file cannot add up many allowed ones either.
    """
    limit = settings.TRUSTVIEW_IMPORT_MAX_ITERATIONS
    total = ITERATIONS_IN_ALL_FACTOR * limit
    if any(count > limit for count in counts) or sum(counts) > total:
        asked = max(counts) if max(counts) > limit else sum(counts)
        raise CertificateFileError(
            _(
                "The file asks for %(count)s password iterations, more than certificate tools write "
                "(the portal accepts at most %(limit)s for each key and %(total)s in all). Export it "
                "again with the tool's usual settings."
            )
            % {
                "count": number_format(asked, force_grouping=True),
                "limit": number_format(limit, force_grouping=True),
                "total": number_format(total, force_grouping=True),
            }
        )


_UNSUPPORTED_DERIVATION = gettext_lazy(
    "The file is protected with a password method that the portal does not support (it reads PBKDF2 "
    "and the PKCS#12 methods). Export it again with the tool's usual settings."
)


def _check_derivations(read_counts: Any, data: bytes) -> None:
    """Read the iteration counts with `read_counts` (a certificates.der function) and check them."""
    try:
        counts = read_counts(data)
    except der.UnsupportedDerivation as exc:
        raise CertificateFileError(_UNSUPPORTED_DERIVATION) from exc
    except der.DerError as exc:
        raise CertificateFileError(_DAMAGED) from exc
    if counts:
        _check_iterations(counts)


def _load_certificate(data: bytes, *, pem: bool) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data) if pem else x509.load_der_x509_certificate(data)
    except x509.InvalidVersion as exc:
        raise CertificateFileError(_BAD_VERSION) from exc
    except ValueError as exc:
        raise CertificateFileError(_DAMAGED) from exc


def _read_pem(data: bytes, password: str | None) -> Bundle:
    bundle = Bundle(certificates=[])
    for label, text in pem_blocks(data):
        if label in _PEM_CERT_LABELS:
            _check_count(len(bundle.certificates) + 1)  # before parsing more than the limit
            bundle.certificates.append(_load_certificate(_normalise_pem_label(label, text), pem=True))
        elif label == b"PKCS7":
            try:
                bundle.certificates.extend(pkcs7.load_pem_pkcs7_certificates(text))
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise CertificateFileError(_DAMAGED) from exc
            _check_count(len(bundle.certificates))
        elif label in _PEM_KEY_LABELS:
            if bundle.private_key is not None:
                raise CertificateFileError(
                    _("The file holds more than one private key. Import one key at a time.")
                )
            bundle.private_key = _read_pem_key(label, text, password)
    if not bundle.certificates and bundle.private_key is None and b"-----BEGIN CERTIFICATE" in data:
        raise CertificateFileError(_DAMAGED)  # a BEGIN without its END: cut short
    return bundle


def pem_blocks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(label, block) for each PEM block with a label this module reads, in file order.

    A block runs from its BEGIN line to the first END line with the same label. Linear in the size of
    `data`, whatever it holds: the cursor only moves forward, and for each of the few labels the position
    of its next END line is remembered, so a file of many BEGIN lines without END lines (which makes a
    backtracking pattern quadratic) is one pass. Other labels are skipped at their BEGIN line.
    """
    next_end: dict[bytes, int] = {}  # label -> where its next END line starts, -1 when there is none
    pos = 0
    while (begin := data.find(b"-----BEGIN ", pos)) != -1:
        label_start = begin + len(b"-----BEGIN ")
        label_end = data.find(b"-----", label_start, label_start + _PEM_LONGEST_LABEL + len(b"-----"))
        pos = label_start
        if label_end == -1 or (label := data[label_start:label_end]) not in _PEM_LABELS:
            continue
        pos = label_end + len(b"-----")
        footer = b"-----END " + label + b"-----"
        end = next_end.get(label)
        if end is None or -1 < end < pos:
            end = next_end[label] = data.find(footer, pos)
        if end == -1:
            continue  # no END for this label anywhere after here: cut short
        pos = end + len(footer)
        yield label, data[begin:pos]


def _normalise_pem_label(label: bytes, text: bytes) -> bytes:
    """OpenSSL's older labels (X509 / TRUSTED CERTIFICATE) carry the same DER as CERTIFICATE."""
    if label == b"CERTIFICATE":
        return text
    body = text[len(b"-----BEGIN " + label + b"-----") : -len(b"-----END " + label + b"-----")]
    return b"-----BEGIN CERTIFICATE-----" + body + b"-----END CERTIFICATE-----"


def _read_pem_key(label: bytes, text: bytes, password: str | None) -> PrivateKey:
    # PKCS#8 says "ENCRYPTED PRIVATE KEY"; the legacy OpenSSL format says "Proc-Type: 4,ENCRYPTED" (and
    # derives its key with one iteration, so only PKCS#8 needs its count checked).
    encrypted = b"ENCRYPTED" in text
    if encrypted and not password:
        raise CertificateFileError(
            _("The private key in the file is protected by a password. Enter the password and try again."),
            field="password",
        )
    if label == b"ENCRYPTED PRIVATE KEY":
        try:
            body = binascii.a2b_base64(text[len(label) + 16 : -(len(label) + 14)])
        except binascii.Error as exc:
            raise CertificateFileError(_DAMAGED) from exc
        _check_derivations(der.pkcs8_iterations, body)
    try:
        key = serialization.load_pem_private_key(
            text, password=password.encode() if encrypted and password else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        if encrypted:
            raise CertificateFileError(
                _("The password does not open the private key in the file."), field="password"
            ) from exc
        raise CertificateFileError(
            _("The private key in the file is damaged or of a kind that is not supported.")
        ) from exc
    return _supported_key(key)


def _supported_key(key: object) -> PrivateKey:
    if isinstance(
        key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        return key
    raise CertificateFileError(
        _("The private key in the file is of a kind that is not supported (use RSA or EC).")
    )


def _read_binary(data: bytes, password: str | None) -> Bundle:
    if _looks_like_pkcs12(data):  # first: BER PKCS#12 (indefinite lengths) has no declared length
        return _read_pkcs12(data, password)
    declared = _der_length(data)
    if declared is None:
        raise CertificateFileError(_NOT_A_CERTIFICATE)
    if declared > len(data):
        raise CertificateFileError(_DAMAGED)
    try:
        return Bundle(certificates=[x509.load_der_x509_certificate(data[:declared])])
    except x509.InvalidVersion as exc:
        raise CertificateFileError(_BAD_VERSION) from exc
    except ValueError:
        pass
    try:
        return Bundle(certificates=pkcs7.load_der_pkcs7_certificates(data))
    except (ValueError, UnsupportedAlgorithm):
        pass
    raise CertificateFileError(_NOT_A_CERTIFICATE)


def _read_pkcs12(data: bytes, password: str | None) -> Bundle:
    # Counted first: OpenSSL derives the MAC key (and the others) before it can say anything.
    _check_derivations(der.pkcs12_iterations, data)
    try:
        # One attempt: without a password OpenSSL itself tries both the absent and the empty one.
        p12 = pkcs12.load_pkcs12(data, password.encode() if password else None)
    except x509.InvalidVersion as exc:
        raise CertificateFileError(_BAD_VERSION) from exc
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    else:
        certificates = [c.certificate for c in ([p12.cert] if p12.cert else []) + list(p12.additional_certs)]
        key = _supported_key(p12.key) if p12.key is not None else None
        return Bundle(certificates=certificates, private_key=key)
    if password:
        raise CertificateFileError(
            _("The password does not open this PKCS#12 file. Check the password and try again."),
            field="password",
        )
    raise CertificateFileError(
        _("This PKCS#12 file is protected by a password. Enter the password and try again."), field="password"
    )


def _der_length(data: bytes) -> int | None:
    """Total length a DER SEQUENCE at the start of `data` declares, or None when it is not one."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER 3, authSafe ContentInfo(pkcs7-data), ... } (RFC 7292)."""
    head = data[:32]
    return b"\x02\x01\x03" in head[:8] and _PKCS7_DATA_OID_DER in head


def _unique(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    result = []
    for certificate in certificates:
        fingerprint = certificate.fingerprint(hashes.SHA256())
        if fingerprint not in seen:
            seen.add(fingerprint)
            result.append(certificate)
    return result


# --- leaves, chains and keys ---------------------------------------------------------------------------


def key_matches(certificate: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))


def key_owner(bundle: Bundle) -> x509.Certificate | None:
    """The certificate in the bundle that the bundle's private key belongs to."""
    if bundle.private_key is None:
        return None
    return next((c for c in bundle.certificates if key_matches(c, bundle.private_key)), None)


def leaves(bundle: Bundle) -> list[x509.Certificate]:
    """Certificates that issued no other certificate in the bundle: the ones the file is about.

    A file with only a CA certificate is about that CA certificate.
    """
    issuers = {c.issuer for c in bundle.certificates if c.issuer != c.subject}
    found = [c for c in bundle.certificates if c.subject not in issuers]
    owner = key_owner(bundle)
    if owner is not None and owner not in found:
        found.insert(0, owner)
    return found or bundle.certificates[:1]


def chain_for(certificate: x509.Certificate, bundle: Bundle) -> list[x509.Certificate]:
    """The issuers of `certificate` found in the bundle, nearest first, up to the root."""
    by_subject = {c.subject: c for c in bundle.certificates}
    chain: list[x509.Certificate] = []
    current = certificate
    while current.issuer != current.subject and current.issuer in by_subject:
        current = by_subject[current.issuer]
        if current in chain or current is certificate:
            break
        chain.append(current)
    return chain


def to_pem(certificates: list[x509.Certificate]) -> str:
    return "".join(_pem(c) for c in certificates)


@functools.lru_cache(maxsize=256)  # the leaves of one CA in a bundle store the same chain
def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_pem_list(text: str) -> list[x509.Certificate]:
    """Certificates from PEM text that this project wrote itself (stored chains)."""
    return x509.load_pem_x509_certificates(text.encode()) if text.strip() else []


# --- facts about one certificate -----------------------------------------------------------------------


# A bundle's certificates are described when the file is read (to refuse a bad field before anything is
# stored) and again when stored: parsed once. Callers only read the facts.
@functools.lru_cache(maxsize=1024)
def describe(certificate: x509.Certificate) -> CertificateFacts:
    """Parse one certificate into the columns the inventory stores, OCES3 fields included.

    Raises CertificateFileError for a field that cannot be read or an identifier too long to store. Text
    comes back storable (see `storable`); it may still be longer than a column.
    """
    try:
        facts = _describe(certificate)
    except CertificateFileError:
        raise
    except Exception as exc:
        # cryptography reads extensions, names and keys only when asked, and which exceptions it raises
        # for a bad one is not a documented contract: DuplicateExtension, UnsupportedGeneralNameType,
        # UnsupportedAlgorithm, ValueError so far. Any of them means this field cannot be read.
        logger.info("Certificate field cannot be read: %s: %s", type(exc).__name__, exc)
        raise CertificateFileError(_UNREADABLE_FIELD) from exc
    if (
        len(facts.serial_number) > 2 * MAX_SERIAL_BYTES
        or max(len(facts.subject_key_id), len(facts.authority_key_id)) > 2 * MAX_KEY_ID_BYTES
    ):
        raise CertificateFileError(_OVERLONG_IDENTIFIER)
    for name in _TEXT_FACTS:
        setattr(facts, name, storable(getattr(facts, name)))
    for name in _TEXT_LIST_FACTS:
        setattr(facts, name, [storable(item) for item in getattr(facts, name)])
    return facts


_TEXT_FACTS = [
    "subject_cn",
    "subject_dn",
    "subject_organization",
    "issuer_cn",
    "issuer_dn",
    "key_algorithm",
    "signature_algorithm",
]
_TEXT_LIST_FACTS = ["subject_alt_names", "policies", "ocsp_urls", "crl_urls"]
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD, the replacement character.

    PostgreSQL refuses NUL in text and JSON and a lone surrogate is not UTF-8, while SQLite keeps both:
    replacing them here stores the same text on both. A visible mark rather than removal, so a name with
    a NUL inside cannot pass for the name without it.
    """
    return _UNSTORABLE.sub("\ufffd", text)


def _describe(certificate: x509.Certificate) -> CertificateFacts:
    # Each name and the extensions are read into dicts once: a bundle of 1,000 is described in one go,
    # and searching the attribute and extension lists again for every field was a fifth of the time.
    subject, issuer = certificate.subject, certificate.issuer
    subject_values, issuer_values = _name_values(subject), _name_values(issuer)
    extensions = {extension.oid: extension.value for extension in certificate.extensions}
    policies = extensions.get(ExtensionOID.CERTIFICATE_POLICIES, [])
    policy_oids = [p.policy_identifier.dotted_string for p in policies]
    aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, [])
    key_size, key_algorithm = _key_description(certificate)
    subject_dn = distinguished_name(subject)
    issuer_dn = distinguished_name(issuer)
    basic_constraints = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    facts = CertificateFacts(
        subject_cn=_first_value(subject_values, NameOID.COMMON_NAME) or subject_dn,
        subject_dn=subject_dn,
        subject_organization=_first_value(subject_values, NameOID.ORGANIZATION_NAME),
        issuer_cn=_first_value(issuer_values, NameOID.COMMON_NAME) or issuer_dn,
        issuer_dn=issuer_dn,
        serial_number=serial_hex(certificate.serial_number),
        fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex().upper(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        key_algorithm=key_algorithm,
        key_size=key_size,
        signature_algorithm=_signature_description(certificate),
        is_ca=bool(basic_constraints.ca) if basic_constraints is not None else False,
        subject_key_id=_hex(extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER), "digest"),
        authority_key_id=_hex(extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER), "key_identifier"),
        subject_alt_names=_subject_alt_names(extensions.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, [])),
        policies=policy_oids,
        ocsp_urls=[
            d.access_location.value
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
        ],
        crl_urls=_crl_urls(extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS, [])),
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
    facts.cvr = _oces_cvr(subject_values)
    facts.oces_uuid = _oces_uuid(subject_values)
    facts.oces_type = oces_type(policy_oids)
    if facts.oces_type or "OCES" in facts.issuer_dn or "OCES" in facts.subject_dn:
        facts.environment = "test" if _is_test_issuer(issuer_values) else "production"
    return facts


def serial_hex(serial: int) -> str:
    """Upper-case hex without separators, padded to whole bytes (as OpenSSL prints it, less the colons)."""
    text = format(serial, "X")
    return text.zfill(len(text) + len(text) % 2)


_ATTRIBUTE_NAMES = {
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
}


def distinguished_name(name: x509.Name) -> str:
    """The name in the certificate's own order, as `openssl x509 -subject` shows it: CN=..., O=..., C=DK."""
    return ", ".join(rdn.rfc4514_string(_ATTRIBUTE_NAMES) for rdn in name.rdns)


def oces_cvr(subject: x509.Name) -> str:
    """The CVR number: OCES3 organizationIdentifier NTRDK-<cvr>; OCES2 serialNumber or O with CVR:<cvr>."""
    return _oces_cvr(_name_values(subject))


def _oces_cvr(values: dict[x509.ObjectIdentifier, list[str]]) -> str:
    for value in values.get(NameOID.ORGANIZATION_IDENTIFIER, []):
        if match := _OCES3_CVR.match(value.strip()):
            return match.group(1)
    for value in values.get(NameOID.SERIAL_NUMBER, []) + values.get(NameOID.ORGANIZATION_NAME, []):
        if match := _OCES2_CVR.search(value):
            return match.group(1)
    return ""


def oces_uuid(subject: x509.Name) -> uuid.UUID | None:
    """The OCES3 certificate UUID from serialNumber UI:DK-<kind>:G:<uuid>; it survives renewals."""
    return _oces_uuid(_name_values(subject))


def _oces_uuid(values: dict[x509.ObjectIdentifier, list[str]]) -> uuid.UUID | None:
    for value in values.get(NameOID.SERIAL_NUMBER, []):
        if match := _OCES3_UUID.match(value.strip()):
            try:
                return uuid.UUID(match.group(1))
            except ValueError:
                return None
    return None


def oces_type(policy_oids: list[str]) -> str:
    """person, employee, organisation or system from an OCES policy OID; "" for other certificates."""
    for oid in policy_oids:
        if oid.startswith(OCES_POLICY_ARC):
            arc = oid[len(OCES_POLICY_ARC) :].split(".")[0]
            if arc in OCES_TYPE_BY_ARC:
                return OCES_TYPE_BY_ARC[arc]
    return ""


def _is_test_issuer(issuer: dict[x509.ObjectIdentifier, list[str]]) -> bool:
    units = issuer.get(NameOID.ORGANIZATIONAL_UNIT_NAME, [])
    # OCES3 test CAs carry OU=Test - cti; OCES2 test CAs say "Systemtest" in their common name.
    return OCES_TEST_ISSUER_OU in units or any(
        "systemtest" in cn.lower() for cn in issuer.get(NameOID.COMMON_NAME, [])
    )


def _name_values(name: x509.Name) -> dict[x509.ObjectIdentifier, list[str]]:
    """A name's attribute values by type, in the name's order (one pass over it)."""
    values: dict[x509.ObjectIdentifier, list[str]] = {}
    for attribute in name:
        values.setdefault(attribute.oid, []).append(str(attribute.value))
    return values


def _first_value(values: dict[x509.ObjectIdentifier, list[str]], oid: x509.ObjectIdentifier) -> str:
    found = values.get(oid)
    return found[0] if found else ""


def _hex(value: Any, attr: str) -> str:
    """A key identifier extension's bytes as upper-case hex ("" when absent)."""
    identifier = getattr(value, attr, None) if value is not None else None
    return identifier.hex().upper() if identifier else ""


_GENERAL_NAME_KINDS = {
    "DNSName": "DNS",
    "RFC822Name": "email",
    "UniformResourceIdentifier": "URI",
    "IPAddress": "IP",
}


def _subject_alt_names(names: Iterable[x509.GeneralName]) -> list[str]:
    result = []
    for general_name in names:
        kind = _GENERAL_NAME_KINDS.get(type(general_name).__name__, type(general_name).__name__)
        result.append(f"{kind}:{general_name.value}")
    return result


def _crl_urls(points: Iterable[x509.DistributionPoint]) -> list[str]:
    return [
        name.value
        for point in points
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _key_description(certificate: x509.Certificate) -> tuple[int | None, str]:
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size, "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.key_size, f"EC {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return key.key_size, "DSA"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256, "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return 456, "Ed448"
    return None, type(key).__name__


def _signature_description(certificate: x509.Certificate) -> str:
    """ "RSASSA-PSS with SHA-256" for PSS (the hash lives in its parameters); otherwise the OID's name."""
    oid = certificate.signature_algorithm_oid
    if oid == SignatureAlgorithmOID.RSASSA_PSS:
        try:
            hash_algorithm = certificate.signature_hash_algorithm
        except UnsupportedAlgorithm:
            hash_algorithm = None
        name = hash_algorithm.name.upper().replace("SHA", "SHA-", 1) if hash_algorithm else "?"
        return f"RSASSA-PSS with {name}"
    name = getattr(oid, "_name", "")
    return oid.dotted_string if name in ("", "Unknown OID") else name
