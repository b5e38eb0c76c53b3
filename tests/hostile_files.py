"""Malformed and hostile certificate files, built at test time from real fixtures and test certificates.

Each builder returns the bytes a hostile user could upload. The DER here is written with a small codec of
its own (not the portal's reader), so the tests do not share the reader's mistakes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from . import pki
from .conftest import ISSUING_CA, ROOT_CA, SYSTEM_2023, oces3

MIB = 1024 * 1024

# --- a tiny DER codec ----------------------------------------------------------------------------------

Node = tuple[int, "list[Node] | bytes"]


def der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def decode(data: bytes) -> Node:
    """One DER element; OCTET STRINGs that hold exactly one SEQUENCE are decoded too (PKCS#12 nests so)."""
    node, end = _decode_at(data, 0)
    if end != len(data):
        raise ValueError("trailing bytes")
    return node


def encode(node: Node) -> bytes:
    tag, content = node
    if isinstance(content, list):
        return der(tag, b"".join(encode(child) for child in content))
    return der(tag, content)


def _decode_at(data: bytes, pos: int) -> tuple[Node, int]:
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    content = data[pos : pos + length]
    if len(content) != length:
        raise ValueError("short")
    end = pos + length
    if tag & 0x20:
        return (tag, _decode_all(content)), end
    if tag == 0x04 and content[:1] == b"\x30":
        try:
            return (tag, [decode(content)]), end
        except (ValueError, IndexError):
            pass
    return (tag, content), end


def _decode_all(data: bytes) -> list[Node]:
    children, pos = [], 0
    while pos < len(data):
        child, pos = _decode_at(data, pos)
        children.append(child)
    return children


def replace_integers(node: Node, old: int, new: int) -> Node:
    tag, content = node
    if isinstance(content, list):
        return tag, [replace_integers(child, old, new) for child in content]
    if tag == 0x02 and int.from_bytes(content, "big", signed=True) == old:
        return tag, der_integer(new)[2:]
    return node


# --- PKCS#12 and encrypted keys that ask for too much work ---------------------------------------------

KDF_MARKER = 2049  # the iteration count the builder writes, then replaced (no other INTEGER has it)


def pkcs12_file(
    password: bytes = b"hostile",
    *,
    mac_iterations: int | None = None,
    kdf_iterations: int | None = None,
    legacy: bool = False,
) -> bytes:
    """A small PKCS#12 with a test key and certificate; its MAC or key derivation iteration counts set.

    With new key derivation counts the MAC is computed again, so a reader that checks the MAC first
    goes on to the key derivation as it would with a file made that way.
    """
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    algorithm = pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC if legacy else pkcs12.PBES.PBESv2SHA256AndAES256CBC
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(KDF_MARKER)
    mac_hash = hashes.SHA1() if legacy else hashes.SHA256()  # noqa: S303 (as older tools write it)
    builder = builder.key_cert_algorithm(algorithm).hmac_hash(mac_hash)
    data = pkcs12.serialize_key_and_certificates(
        b"hostile", leaf.key, leaf.certificate, None, builder.build(password)
    )
    tag, (version, auth_safe, mac_data) = decode(data)  # type: ignore[misc]
    mac_tag, (digest_info, salt, iterations) = mac_data  # type: ignore[misc]
    if kdf_iterations is not None:
        auth_safe = replace_integers(auth_safe, KDF_MARKER, kdf_iterations)
        content = encode(auth_safe[1][1][1][0][1][0])  # type: ignore[index]  # what [0] OCTET STRING holds
        hash_name = "sha1" if legacy else "sha256"
        key = pkcs12_kdf(hash_name, password, salt[1], 3, int.from_bytes(iterations[1], "big"))
        digest = hmac.new(key, content, hash_name).digest()
        digest_info = (0x30, [digest_info[1][0], (0x04, digest)])
    if mac_iterations is not None:
        iterations = (0x02, der_integer(mac_iterations)[2:])
    return encode((tag, [version, auth_safe, (mac_tag, [digest_info, salt, iterations])]))


def pkcs12_kdf(hash_name: str, password: bytes, salt: bytes, purpose: int, iterations: int) -> bytes:
    """RFC 7292 appendix B.2, for one hash-sized output (the MAC key, purpose 3)."""
    u, v = hashlib.new(hash_name).digest_size, 64
    bmp = password.decode().encode("utf-16-be") + b"\0\0"

    def fill(data: bytes) -> bytes:
        size = v * -(-len(data) // v)
        return (data * (size // len(data) + 1))[:size] if data else b""

    block = hashlib.new(hash_name, bytes([purpose]) * v + fill(salt) + fill(bmp)).digest()
    for _ in range(iterations - 1):
        block = hashlib.new(hash_name, block).digest()
    return block[:u]


def encrypted_key_pem(iterations: int, password: bytes = b"hostile") -> bytes:
    """A certificate with its PKCS#8 key encrypted under PBKDF2 with `iterations` rounds (was 2048)."""
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    key_der = leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    key_der = encode(replace_integers(decode(key_der), 2048, iterations))
    return leaf.pem + pem_block("ENCRYPTED PRIVATE KEY", key_der)


def pem_block(label: str, data: bytes) -> bytes:
    import base64

    body = base64.encodebytes(data).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""])


SCRYPT_OID = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11, as long as PBKDF2's
PBKDF2_OID = bytes.fromhex("06092a864886f70d01050c")


# --- certificates with fields that are hard to read or to store ----------------------------------------


def certificate(
    subject: x509.Name | None = None,
    extensions: list[x509.ExtensionType] | None = None,
) -> bytes:
    """A DER certificate from a fresh test CA, with the given subject and extensions."""
    ca = pki.make_ca()
    key = pki.ec.generate_private_key(pki.ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or pki.name("hostile.example"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.NOW - dt.timedelta(days=1))
        .not_valid_after(pki.NOW + dt.timedelta(days=365))
    )
    for extension in extensions or []:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def long_name(cn: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def with_bytes_replaced(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) >= 1, (old, new)
    return data.replace(old, new)


def duplicate_extensions() -> bytes:
    """Two SubjectKeyIdentifier extensions: an unknown extension re-tagged as a second one."""
    data = certificate(
        extensions=[
            x509.SubjectKeyIdentifier(b"\x01" * 20),
            x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.99"), der(0x04, b"\x02" * 20)),
        ]
    )
    return with_bytes_replaced(data, bytes.fromhex("0603551d63"), bytes.fromhex("0603551d0e"))


def unsupported_general_name() -> bytes:
    """A subjectAltName whose name is an x400Address ([3]), which the reader does not support."""
    data = certificate(extensions=[x509.SubjectAlternativeName([x509.RFC822Name("abc@x")])])
    # rfc822Name [1] IMPLICIT IA5String "abc@x" becomes x400Address [3] holding an empty SEQUENCE...
    return with_bytes_replaced(data, b"\x81\x05abc@x", b"\xa3\x05\x30\x03\x02\x01\x00")


def bad_version() -> bytes:
    """Version 6 (the field says 5): no such X.509 version."""
    data = certificate()
    return with_bytes_replaced(data, b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x05")


def unknown_key_algorithm() -> bytes:
    """The public key's algorithm OID changed from id-ecPublicKey to an unknown arc."""
    data = certificate()
    return with_bytes_replaced(data, bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06072a8648ce3d0209"))


def long_signature_oid() -> bytes:
    """An unknown signature algorithm whose dotted OID is 102 characters long (the column holds 64)."""
    tree = decode(certificate())
    arcs = [1, 3, 6, 1, 4, 1] + [99999] * 15
    oid = bytes([40 * arcs[0] + arcs[1]]) + b"".join(_base128(arc) for arc in arcs[2:])
    tag, (tbs, _algorithm, signature) = tree  # type: ignore[misc]
    new_algorithm = (0x30, [(0x06, oid)])
    tbs_tag, tbs_fields = tbs  # type: ignore[misc]
    tbs_fields = list(tbs_fields)  # type: ignore[arg-type]
    tbs_fields[2] = new_algorithm  # version, serial, signature, ...
    return encode((tag, [(tbs_tag, tbs_fields), new_algorithm, signature]))


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def long_serial() -> bytes:
    """A 40-byte serial number (RFC 5280 allows 20)."""
    tag, (tbs, algorithm, signature) = decode(certificate())  # type: ignore[misc]
    tbs_tag, tbs_fields = tbs  # type: ignore[misc]
    tbs_fields = list(tbs_fields)  # type: ignore[arg-type]
    tbs_fields[1] = (0x02, der_integer(int.from_bytes(b"\x7f" * 40, "big"))[2:])
    return encode((tag, [(tbs_tag, tbs_fields), algorithm, signature]))


def ocsp_location_not_a_url() -> bytes:
    """An OCSP access location that is a directory name instead of a URL."""
    description = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.DirectoryName(pki.name("not a url"))
    )
    return certificate(extensions=[x509.AuthorityInformationAccess([description])])


def many_pem_certificates(count: int) -> bytes:
    """`count` distinct certificates in one PEM file."""
    ca = pki.make_ca()
    return b"".join(pki.make_leaf(ca).pem for _ in range(count))


def many_pkcs7_certificates(count: int) -> bytes:
    ca = pki.make_ca()
    return pkcs7.serialize_certificates(
        [pki.make_leaf(ca).certificate for _ in range(count)], serialization.Encoding.DER
    )


def quadratic_pem() -> bytes:
    """1 MiB of BEGIN lines without an END: a backtracking PEM pattern takes minutes on it."""
    line = b"-----BEGIN CERTIFICATE-----\n"
    return (line * (MIB // len(line) + 1))[:MIB]


def many_labels_pem() -> bytes:
    """1 MiB of BEGIN lines with a different label each, none ended."""
    lines = b"".join(f"-----BEGIN X{i}-----\n".encode() for i in range(MIB // 16))
    return lines[:MIB]


def nested_ber() -> bytes:
    """A PKCS#12 header followed by deeply nested indefinite-length SEQUENCEs."""
    head = bytes.fromhex("3080020103") + bytes.fromhex("3080") + bytes.fromhex("06092a864886f70d010701")
    return head + b"\xa0\x80\x24\x80" + b"\x30\x80" * 100_000


@dataclass(frozen=True)
class Hostile:
    """One file of the corpus: how to build it, the password sent with it, and what the reader says."""

    build: Callable[[], bytes]
    sentence: str
    password: str = ""


HIGH = 100_000_000
TOO_MANY_ITERATIONS = "password iterations, more than certificate tools write"
CORPUS: dict[str, Hostile] = {
    "PEM of 1 MiB repeated BEGIN lines": Hostile(quadratic_pem, "The file is damaged"),
    "PEM of 1 MiB BEGIN lines, each label different": Hostile(
        many_labels_pem, "The file is not a certificate"
    ),
    "PKCS#12 with MAC iterations 10^8": Hostile(
        lambda: pkcs12_file(mac_iterations=HIGH), TOO_MANY_ITERATIONS, "hostile"
    ),
    "PKCS#12 with MAC iterations 2^31-1, no password": Hostile(
        lambda: pkcs12_file(mac_iterations=2**31 - 1), TOO_MANY_ITERATIONS
    ),
    "PKCS#12 with PBKDF2 iterations 10^8": Hostile(
        lambda: pkcs12_file(kdf_iterations=HIGH), TOO_MANY_ITERATIONS, "hostile"
    ),
    "PKCS#12 with pbeWithSHAAnd3-KeyTripleDES iterations 10^8": Hostile(
        lambda: pkcs12_file(kdf_iterations=HIGH, legacy=True), TOO_MANY_ITERATIONS, "hostile"
    ),
    "PKCS#12 with scrypt instead of PBKDF2": Hostile(
        lambda: with_bytes_replaced(pkcs12_file(), PBKDF2_OID, SCRYPT_OID),
        "password method that the portal does not support",
        "hostile",
    ),
    "PKCS#12 header over deeply nested BER": Hostile(nested_ber, "The file is damaged"),
    "PEM key under PBKDF2 with 10^8 iterations": Hostile(
        lambda: encrypted_key_pem(HIGH), TOO_MANY_ITERATIONS, "hostile"
    ),
    "duplicate extensions": Hostile(duplicate_extensions, "cannot be read"),
    "unsupported general name": Hostile(unsupported_general_name, "cannot be read"),
    "bad version": Hostile(bad_version, "version"),
    "unknown public key algorithm": Hostile(unknown_key_algorithm, "cannot be read"),
    "40-byte serial number": Hostile(long_serial, "serial number"),
    "201 certificates in PEM": Hostile(lambda: many_pem_certificates(201), "more than 200 certificates"),
    "300 certificates in PKCS#7": Hostile(lambda: many_pkcs7_certificates(300), "more than 200 certificates"),
    "201 copies of a real certificate": Hostile(
        lambda: oces3(SYSTEM_2023) * 201, "more than 200 certificates"
    ),
}

# Files that are odd but hold a real certificate: stored, with their text made safe.
STORABLE: dict[str, Callable[[], bytes]] = {
    "NUL in the common name": lambda: certificate(pki.name("evil\x00.example", O="Nul\x00 A/S")),
    "300-character organisation and common name": lambda: certificate(long_name("C" * 300, "O" * 300)),
    "NUL in a subjectAltName": lambda: certificate(
        extensions=[x509.SubjectAlternativeName([x509.DNSName("a\x00b.example")])]
    ),
    "OCSP location that is not a URL": ocsp_location_not_a_url,
    "signature algorithm OID of 102 characters": long_signature_oid,
    "organisation of 300 characters with a CVR": lambda: certificate(
        pki.name("org.example", O="O" * 300, organizationIdentifier="NTRDK-12345678")
    ),
    "chain of real certificates": lambda: oces3(SYSTEM_2023) + oces3(ISSUING_CA) + oces3(ROOT_CA),
}
