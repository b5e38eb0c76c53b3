"""Certificates made on the spot for tests that the real fixtures cannot cover (keys, OCES2 names, PKCS#12).

EC P-256 keys keep this fast; the real OCES3 fixtures in ../shared/fixtures/oces3 cover RSA and PSS.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_pem(self, password: str | None = None) -> bytes:
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def name(cn: str, **extra: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    oids = {
        "O": NameOID.ORGANIZATION_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
        "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
    }
    attributes += [x509.NameAttribute(oids[key], value) for key, value in extra.items()]
    return x509.Name(attributes)


def make_ca(cn: str = "Test Root CA", issuer: Issued | None = None, **extra: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = name(cn, **extra)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_leaf(
    issuer: Issued,
    subject: x509.Name | None = None,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    policies: list[str] | None = None,
    san: list[str] | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or name("leaf.example"))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]
            ),
            critical=False,
        )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False
        )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def oces3_subject(cn: str, cvr: str, oces_uuid: uuid.UUID) -> x509.Name:
    return name(
        cn,
        serialNumber=f"UI:DK-O:G:{oces_uuid}",
        O="Testorganisation",
        organizationIdentifier=f"NTRDK-{cvr}",
        C="DK",
    )


def p12(leaf: Issued, chain: list[Issued], password: str) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"trustview test",
        leaf.key,
        leaf.certificate,
        [c.certificate for c in chain],
        serialization.BestAvailableEncryption(password.encode()),
    )
