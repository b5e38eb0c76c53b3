"""Certificate authorities and everything they sign: OCES3-shaped certificates, PKCS#12, OCSP, CRL, TLS.

The CA keys and certificates are files in the state directory, made on first use. The server and
operator commands may both find them missing at the same moment, so creation happens under an exclusive
lock file and every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

from mitid.simulator.state import (
    CA_FILES,
    ENVIRONMENTS,
    TLS_FILES,
    ca_dir,
    material_present,
    tls_dir,
    utc_now,
)

ROOT_KEY_BITS = 4096  # as the real OCES3 root
ISSUING_KEY_BITS = 3072
LEAF_KEY_BITS = 3072
ROOT_VALIDITY = timedelta(days=25 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
# The real certificates run from 14:11:30 to 14:11:29 three years (1095 days) later.
DEFAULT_LEAF_VALIDITY = timedelta(days=1095) - timedelta(seconds=1)
# CA certificates start a little in the past, so a clock a few minutes behind still trusts them.
CA_BACKDATE = timedelta(hours=1)
OCSP_VALIDITY = timedelta(hours=1)
CRL_VALIDITY = timedelta(hours=24)

PSS_SHA256 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

POLICY_QCP_N = ObjectIdentifier("0.4.0.2042.1.1")
POLICY_OCES_ORGANISATION = ObjectIdentifier("1.2.208.169.1.1.1.3.7.1")
POLICY_OCES_EMPLOYEE = ObjectIdentifier("1.2.208.169.1.1.1.2.7.1")
QC_STATEMENTS = ObjectIdentifier("1.3.6.1.5.5.7.1.3")

# qcStatements = SEQUENCE { SEQUENCE { id-qcs-pkixQCSyntax-v2, SEQUENCE { semanticsId, SEQUENCE {
# [6] "https://uid.gov.dk" } } } }. The legal-person bytes are those of the real certificates.
_QC_PREFIX = bytes.fromhex("302d302b06082b06010505070b02301f060704008bec490101")
_QC_SUFFIX = bytes.fromhex("3014861268747470733a2f2f7569642e676f762e646b")
QC_STATEMENTS_LEGAL_PERSON = _QC_PREFIX[:-1] + b"\x02" + _QC_SUFFIX  # semantics 0.4.0.194121.1.2
QC_STATEMENTS_NATURAL_PERSON = _QC_PREFIX + _QC_SUFFIX  # semantics 0.4.0.194121.1.1

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
}

RFC4514_NAMES = {
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


# Files ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _material_lock(state_dir: Path) -> Iterator[None]:
    """Exclusive across processes: only one of two racing processes generates keys."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".material.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, data: bytes, private: bool = False) -> None:
    """Write to a temporary file beside ``path`` and rename it, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_material(state_dir: Path) -> None:
    """Creates the OCES CAs of both environments and the TLS CA and server certificate, if missing."""
    if material_present(state_dir):
        return
    with _material_lock(state_dir):
        for environment in ENVIRONMENTS:
            directory = ca_dir(state_dir, environment)
            if not all((directory / name).is_file() for name in CA_FILES):
                _create_authority(directory, environment)
        directory = tls_dir(state_dir)
        if not all((directory / name).is_file() for name in TLS_FILES):
            _create_tls(directory)


# OCES CAs ----------------------------------------------------------------------------------------------


def ca_name(environment: str, common_name: str) -> x509.Name:
    """The real OCES3 CA names: test ones carry ``OU=Test - cti``."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if environment == "test":
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Test - cti"))
    attributes += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Den Danske Stat"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
    ]
    return x509.Name(attributes)


def random_serial() -> int:
    """A random positive 159-bit serial number, like the real certificates' 20-byte serials."""
    return secrets.randbits(159) | (1 << 158)


def serial_hex(serial: int) -> str:
    """The contract's serial format: upper-case hex, no separators."""
    return f"{serial:X}"


def _ca_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    signing_key: rsa.RSAPrivateKey,
    issuer_key: rsa.RSAPublicKey | None,
    path_length: int | None,
    validity: timedelta,
) -> x509.Certificate:
    """A CA certificate shaped like the real OCES3 ones (without their URLs, which depend on the port)."""
    now = utc_now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - CA_BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    )
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(
        x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    return builder.sign(signing_key, hashes.SHA256(), rsa_padding=PSS_SHA256)


def _create_authority(directory: Path, environment: str) -> None:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=ROOT_KEY_BITS)
    root_name = ca_name(environment, "Den Danske Stat OCES rod-CA")
    root = _ca_certificate(root_name, root_name, root_key.public_key(), root_key, None, None, ROOT_VALIDITY)
    issuing_key = rsa.generate_private_key(public_exponent=65537, key_size=ISSUING_KEY_BITS)
    issuing = _ca_certificate(
        ca_name(environment, "Den Danske Stat OCES udstedende-CA 1"),
        root_name,
        issuing_key.public_key(),
        root_key,
        root_key.public_key(),
        0,
        ISSUING_VALIDITY,
    )
    # Keys first: a certificate file is never there without its key.
    _write_atomically(directory / "root.key", _key_pem(root_key), private=True)
    _write_atomically(directory / "issuing.key", _key_pem(issuing_key), private=True)
    _write_atomically(directory / "root.pem", _cert_pem(root))
    _write_atomically(directory / "issuing.pem", _cert_pem(issuing))


@dataclass(frozen=True)
class Authority:
    """One environment's issuing CA with its key, and the root above it."""

    environment: str
    root: x509.Certificate
    issuing: x509.Certificate
    issuing_key: rsa.RSAPrivateKey

    @classmethod
    def load(cls, state_dir: Path, environment: str) -> Authority:
        directory = ca_dir(state_dir, environment)
        # The simulator made this key itself: checking the RSA key again would cost a tenth of a second of
        # CPU at every start for nothing.
        key = serialization.load_pem_private_key(
            (directory / "issuing.key").read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{directory / 'issuing.key'} is not an RSA key")
        return cls(
            environment=environment,
            root=x509.load_pem_x509_certificate((directory / "root.pem").read_bytes()),
            issuing=x509.load_pem_x509_certificate((directory / "issuing.pem").read_bytes()),
            issuing_key=key,
        )

    def chain_pem(self) -> bytes:
        return _cert_pem(self.issuing) + _cert_pem(self.root)


# Issued certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who a certificate is for; renewal copies it from the old certificate unchanged."""

    certificate_type: str  # organisation, system or employee
    uuid: str
    name: str
    organisation_name: str
    cvr: str

    @property
    def is_employee(self) -> bool:
        return self.certificate_type == "employee"

    def subject(self) -> x509.Name:
        """The real order: CN, serialNumber, O, organizationIdentifier, C."""
        letter = "E" if self.is_employee else "O"
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, self.name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, f"UI:DK-{letter}:G:{self.uuid}"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organisation_name),
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRDK-{self.cvr}"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
            ]
        )


def subject_string(name: x509.Name) -> str:
    """The subject as the contract writes it: attributes in certificate order, ``, `` between them."""
    return ", ".join(attribute.rfc4514_string(RFC4514_NAMES) for attribute in name)


KEY_POOL_DIR = "key-pool"


def make_key_pool(state_dir: Path, count: int) -> int:
    """Makes ``count`` more leaf keys ahead of need in STATE/key-pool; returns how many are pooled.

    A CA may make keys before it is asked for them. Issuing then takes a pooled key (each one once)
    instead of spending a quarter of a second of CPU on RSA-3072 generation; the test suite pools keys
    so that its few hundred certificates do not.
    """
    pool = state_dir / KEY_POOL_DIR
    pool.mkdir(parents=True, exist_ok=True)
    for _ in range(count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Written under a temporary name and renamed, so a key is only ever taken whole.
        with tempfile.NamedTemporaryFile(dir=pool, suffix=".partial", delete=False) as partial:
            partial.write(der)
        os.rename(partial.name, pool / f"{secrets.token_hex(8)}.der")
    return len(list(pool.glob("*.der")))


def take_pooled_key(state_dir: Path) -> rsa.RSAPrivateKey | None:
    """A key from STATE/key-pool, removed from it so that no other certificate gets it; None when the pool
    is empty (or was never made). Threads and processes may take at once: only one unlink succeeds."""
    pool = state_dir / KEY_POOL_DIR
    for candidate in sorted(pool.glob("*.der")) if pool.is_dir() else []:
        try:
            der = candidate.read_bytes()
            candidate.unlink()
        except FileNotFoundError:
            continue  # taken meanwhile
        # Made by make_key_pool: checking the RSA key (primes, CRT values) costs nearly what making it does.
        key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size == LEAF_KEY_BITS:
            return key
    return None


def issue_certificate(
    authority: Authority,
    holder: Holder,
    validity: timedelta,
    http_url: str,
    now: datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """An OCES3-shaped certificate for ``key`` (default: a new one), valid from ``now`` (the simulator's
    clock, :meth:`Store.now`; default the machine's); URLs point at ``http_url``."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS)
    base = f"{http_url.rstrip('/')}/{authority.environment}"
    policy = POLICY_OCES_EMPLOYEE if holder.is_employee else POLICY_OCES_ORGANISATION
    qc_statements = QC_STATEMENTS_NATURAL_PERSON if holder.is_employee else QC_STATEMENTS_LEGAL_PERSON
    issuing_ski = authority.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = now or utc_now()
    # Extensions in the order the real certificates carry them.
    builder = (
        x509.CertificateBuilder()
        .subject_name(holder.subject())
        .issuer_name(authority.issuing.subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuing_ski), critical=False
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{base}/ca/issuing.cer"),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(POLICY_QCP_N, None),
                    x509.PolicyInformation(policy, None),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.UnrecognizedExtension(QC_STATEMENTS, qc_statements), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(f"{base}/crl/issuing.crl")],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    certificate = builder.sign(authority.issuing_key, hashes.SHA256(), rsa_padding=PSS_SHA256)
    return certificate, key


def new_pkcs12_password() -> str:
    return secrets.token_urlsafe(18)


def pkcs12_base64(
    authority: Authority, certificate: x509.Certificate, key: rsa.RSAPrivateKey, password: str
) -> str:
    """Key, certificate and chain, encrypted with AES-256-CBC under PBKDF2 (OpenSSL 3 opens it)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    data = pkcs12.serialize_key_and_certificates(
        str(common_name).encode("utf-8"), key, certificate, [authority.issuing, authority.root], encryption
    )
    return base64.b64encode(data).decode("ascii")


# Revocation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    revoked_at: datetime
    reason: str


def _issuer_hashes(issuing: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """RFC 6960 CertID hashes of the issuing CA: of its DER name and of its public key's bit string."""
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuing.subject.public_bytes())
    key_hash = hashes.Hash(algorithm)
    public_key = cast(rsa.RSAPublicKey, issuing.public_key())
    key_hash.update(public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1))
    return name_hash.finalize(), key_hash.finalize()


def ocsp_serial(request_der: bytes) -> int | None:
    """The serial a DER OCSP request asks about, or None when the request cannot be read."""
    try:
        return ocsp.load_der_ocsp_request(request_der).serial_number
    except ValueError:
        return None


def ocsp_response(
    authority: Authority,
    request_der: bytes,
    known: bool,
    revocation: Revocation | None,
    now: datetime | None = None,
) -> bytes:
    """The DER OCSP response: good, revoked or unknown, or malformedRequest / unauthorized.

    ``known`` says whether this CA issued the serial asked about. The response is signed by the issuing
    CA itself (PKCS#1 v1.5 with SHA-256; cryptography signs OCSP responses without PSS).
    """
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
    except Exception:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    name_hash, key_hash = _issuer_hashes(authority.issuing, algorithm)
    if (request.issuer_name_hash, request.issuer_key_hash) != (name_hash, key_hash):
        # A certificate of another CA: this responder may not speak for it.
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    if not known:
        status = ocsp.OCSPCertStatus.UNKNOWN
    elif revocation is not None:
        status = ocsp.OCSPCertStatus.REVOKED
    else:
        status = ocsp.OCSPCertStatus.GOOD
    now = now or utc_now()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=status,
            this_update=now,
            next_update=now + OCSP_VALIDITY,
            revocation_time=revocation.revoked_at if revocation else None,
            revocation_reason=REASONS[revocation.reason] if revocation else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, authority.issuing)
    )
    with contextlib.suppress(x509.ExtensionNotFound):
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
        builder = builder.add_extension(nonce.value, critical=False)
    response = builder.sign(authority.issuing_key, hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def crl_der(
    authority: Authority, revoked: list[tuple[int, Revocation]], now: datetime | None = None
) -> bytes:
    """A fresh CRL of the issuing CA, valid 24 hours, signed RSASSA-PSS like the certificates.

    Entries blocked for reason ``unspecified`` carry no reason code (RFC 5280 section 5.3.1).
    """
    now = now or utc_now()
    issuing_ski = authority.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.issuing.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuing_ski), False)
        # Seconds since the epoch grow with every CRL made, as CRL numbers must.
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
    )
    for serial, revocation in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revocation.revoked_at)
        if revocation.reason != "unspecified":
            entry = entry.add_extension(x509.CRLReason(REASONS[revocation.reason]), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(authority.issuing_key, hashes.SHA256(), rsa_padding=PSS_SHA256)
    return crl.public_bytes(serialization.Encoding.DER)


# TLS ----------------------------------------------------------------------------------------------------


def _create_tls(directory: Path) -> None:
    """A private TLS CA (not an OCES CA) and a server certificate for the loopback names.

    ECDSA P-256: quick to make and to handshake with; nothing about TLS needs to look like OCES.
    """
    now = utc_now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "MitID Erhverv simulator TLS CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustview simulator"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - CA_BACKDATE)
        .not_valid_after(now + timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_subject)
        .public_key(server_key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - CA_BACKDATE)
        .not_valid_after(now + timedelta(days=10 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ip_address("127.0.0.1")),
                    x509.IPAddress(ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_atomically(directory / "ca.key", _key_pem(ca_key), private=True)
    _write_atomically(directory / "server.key", _key_pem(server_key), private=True)
    _write_atomically(directory / "server.pem", _cert_pem(server_cert))
    _write_atomically(directory / "ca.pem", _cert_pem(ca_cert))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def ensure_tls_names(state_dir: Path, names: list[str]) -> bool:
    """Make the TLS server certificate also name NAMES (host names or IP addresses), re-issued under the
    same TLS CA so clients that trust tls/ca.pem keep trusting it; returns whether anything changed.

    For a simulator reached under another name than localhost, e.g. https://simulator:8443 in
    docker-compose.yml (`serve --tls-name simulator`). Running it again changes nothing."""
    ensure_material(state_dir)
    directory = state_dir / "tls"
    server = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    present = list(server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    wanted = present + [name for name in map(_general_name, names) if name not in present]
    if wanted == present:
        return False
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(server.subject)
        .issuer_name(ca.subject)
        .public_key(server.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(server.not_valid_before_utc)
        .not_valid_after(server.not_valid_after_utc)
    )
    for extension in server.extensions:  # the same extensions, with the longer list of names
        is_names = extension.oid == x509.SubjectAlternativeName.oid
        value = x509.SubjectAlternativeName(wanted) if is_names else extension.value
        builder = builder.add_extension(value, critical=extension.critical)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    # Written beside and renamed, so a simulator starting at the same moment never reads half a file.
    _write_atomically(directory / "server.pem", _cert_pem(certificate))
    return True


def client_trust_pem(state_dir: Path) -> str:
    """Both environments' roots and issuing CAs.

    The server accepts client certificates of either and tells them apart itself, so a certificate of
    the wrong environment gets a clear ``unknown_certificate`` answer instead of a TLS alert.
    """
    parts = []
    for environment in ENVIRONMENTS:
        directory = ca_dir(state_dir, environment)
        parts.append((directory / "root.pem").read_text())
        parts.append((directory / "issuing.pem").read_text())
    return "".join(parts)
