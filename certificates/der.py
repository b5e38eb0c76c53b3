"""A small, bounded DER reader, and the key derivations a PKCS#12 file or an encrypted key asks for.

OpenSSL derives keys from the password before it can say anything about a PKCS#12 file or an encrypted
PKCS#8 key, and it iterates as often as the file says: 10^8 holds a worker for most of a minute. So the
importer first reads the iteration counts from the file's own structure (`pkcs12_iterations`,
`pkcs8_iterations`) and refuses a file that asks for more than real tools write, before deriving anything.

Only the outer structure is read, never the encrypted parts: an encrypted SafeContents can hold further
key bags whose counts are visible only after decryption (see docs/operations.md). The reader accepts BER
(indefinite lengths, constructed OCTET STRINGs), which some tools write, and stops at MAX_DEPTH nesting
levels and MAX_ELEMENTS elements, so no file makes it work harder than its size.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DEPTH = 32
MAX_ELEMENTS = 50_000

# OID contents (the bytes after tag and length) of what the walk recognises.
_DATA = bytes.fromhex("2a864886f70d010701")  # pkcs7-data
_ENCRYPTED_DATA = bytes.fromhex("2a864886f70d010706")  # pkcs7-encryptedData
_SHROUDED_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0102")
_SAFE_CONTENTS_BAG = bytes.fromhex("2a864886f70d010c0a0106")
_PBES2 = bytes.fromhex("2a864886f70d01050d")
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_PBMAC1 = bytes.fromhex("2a864886f70d01050e")
# PKCS#12 pbeWithSHAAnd...: 1.2.840.113549.1.12.1.1-6; PKCS#5 PBES1 pbeWith...: 1.2.840.113549.1.5.x.
_PKCS12_PBE_PREFIX = bytes.fromhex("2a864886f70d010c01")
_PBES1 = {bytes.fromhex("2a864886f70d0105") + bytes([arc]) for arc in (1, 3, 4, 6, 10, 11)}

_MAX_SAFE_CONTENTS_NESTING = 4


class DerError(ValueError):
    """The bytes are not the structure expected, or nest deeper or hold more than the reader goes."""


class UnsupportedDerivation(DerError):
    """A key derivation other than PBKDF2, PKCS#12's own or PBES1 (scrypt, for one: its cost is memory)."""


@dataclass(frozen=True)
class Element:
    """One TLV: its identifier octet and its content (for a constructed element, its children's bytes)."""

    tag: int
    content: memoryview  # a view into the file: reading never copies it


class _Walker:
    """Reads elements, counting them against MAX_ELEMENTS for the whole walk."""

    def __init__(self) -> None:
        self.elements = 0

    def one(self, data: bytes | memoryview) -> Element:
        element, _end = self._read(memoryview(data), 0, 0)
        return element

    def children(self, element: Element, depth: int = 0) -> list[Element]:
        if not element.tag & 0x20:
            raise DerError("primitive element where a constructed one was expected")
        found, pos = [], 0
        while pos < len(element.content):
            child, pos = self._read(element.content, pos, depth + 1)
            found.append(child)
        return found

    def octets(self, element: Element, depth: int = 0) -> bytes:
        """An OCTET STRING's value; BER may split it into a constructed string of segments."""
        if element.tag == 0x04:
            return bytes(element.content)
        if element.tag == 0x24 and depth < MAX_DEPTH:
            return b"".join(self.octets(child, depth + 1) for child in self.children(element, depth))
        raise DerError("not an OCTET STRING")

    def _read(self, data: memoryview, pos: int, depth: int) -> tuple[Element, int]:
        self.elements += 1
        if self.elements > MAX_ELEMENTS or depth > MAX_DEPTH:
            raise DerError("too many or too deeply nested elements")
        if pos + 2 > len(data):
            raise DerError("cut short")
        tag, first = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise DerError("high tag numbers do not occur in these structures")
        pos += 2
        if first == 0x80:  # BER indefinite length: the children up to an end-of-contents marker
            if not tag & 0x20:
                raise DerError("indefinite length on a primitive element")
            start = pos
            while data[pos : pos + 2] != b"\0\0":
                _child, pos = self._read(data, pos, depth + 1)
            return Element(tag, data[start:pos]), pos + 2
        if first & 0x80:
            count = first & 0x7F
            if count > 4 or pos + count > len(data):
                raise DerError("bad length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        else:
            length = first
        if pos + length > len(data):
            raise DerError("cut short")
        return Element(tag, data[pos : pos + length]), pos + length


def _integer(element: Element) -> int:
    if element.tag != 0x02 or not element.content:
        raise DerError("not an INTEGER")
    if len(element.content) > 16:
        return 1 << 128  # more than any cap; no need to convert a long string of bytes
    return int.from_bytes(element.content, "big", signed=True)


def _oid(element: Element) -> bytes:
    if element.tag != 0x06:
        raise DerError("not an OBJECT IDENTIFIER")
    return bytes(element.content)


def pkcs12_iterations(data: bytes) -> list[int]:
    """The iteration counts of the MAC and of each key derivation visible before decryption (RFC 7292).

    Raises DerError when the outer structure cannot be read, UnsupportedDerivation for a derivation
    other than PBKDF2, PKCS#12's own or PBES1.
    """
    walker = _Walker()
    try:
        pfx = walker.children(walker.one(data))
        if len(pfx) < 2:
            raise DerError("a PFX has a version and content")
        counts = _mac_iterations(walker, pfx[2]) if len(pfx) > 2 else []
        content_type, content = _content_info(walker, pfx[1])
        if content_type != _DATA:
            return counts  # public-key integrity mode: nothing to derive (and OpenSSL does not read it)
        for info in walker.children(walker.one(walker.octets(content))):  # AuthenticatedSafe
            content_type, content = _content_info(walker, info)
            if content_type == _DATA:
                counts += _safe_contents(walker, walker.one(walker.octets(content)), 0)
            elif content_type == _ENCRYPTED_DATA:
                # EncryptedData ::= SEQUENCE { version, EncryptedContentInfo SEQUENCE { type, algorithm,
                # [0] encrypted content } }
                encrypted_content_info = walker.children(walker.children(content)[1])
                counts += _algorithm_iterations(walker, encrypted_content_info[1])
        return counts
    except IndexError as error:
        raise DerError("an element is missing") from error


def pkcs8_iterations(data: bytes) -> list[int]:
    """The iteration count of an EncryptedPrivateKeyInfo (RFC 5958) DER, before decryption."""
    walker = _Walker()
    try:
        return _algorithm_iterations(walker, walker.children(walker.one(data))[0])
    except IndexError as error:
        raise DerError("an element is missing") from error


def _content_info(walker: _Walker, element: Element) -> tuple[bytes, Element]:
    """ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }: the type and the content."""
    content_type, wrapped = walker.children(element)[:2]
    if wrapped.tag != 0xA0:
        raise DerError("content is not [0]")
    return _oid(content_type), walker.children(wrapped)[0]


def _mac_iterations(walker: _Walker, element: Element) -> list[int]:
    """MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }."""
    mac_data = walker.children(element)
    algorithm = walker.children(walker.children(mac_data[0])[0])
    if _oid(algorithm[0]) == _PBMAC1:  # RFC 9579: the count is in PBMAC1's own PBKDF2 parameters
        return _pbkdf2_iterations(walker, walker.children(algorithm[1])[0])
    return [_integer(mac_data[2])] if len(mac_data) > 2 else [1]


def _safe_contents(walker: _Walker, element: Element, nesting: int) -> list[int]:
    """SafeContents ::= SEQUENCE OF SafeBag { bagId, [0] bagValue, attributes }: the shrouded key bags."""
    if nesting > _MAX_SAFE_CONTENTS_NESTING:
        raise DerError("SafeContents nested too deeply")
    counts = []
    for bag in walker.children(element):
        bag_id, value = walker.children(bag)[:2]
        if _oid(bag_id) == _SHROUDED_KEY_BAG:
            encrypted_key_info = walker.children(walker.children(value)[0])
            counts += _algorithm_iterations(walker, encrypted_key_info[0])
        elif _oid(bag_id) == _SAFE_CONTENTS_BAG:
            counts += _safe_contents(walker, walker.children(value)[0], nesting + 1)
    return counts


def _algorithm_iterations(walker: _Walker, element: Element) -> list[int]:
    """The iteration count of a password-based encryption AlgorithmIdentifier."""
    algorithm = walker.children(element)
    oid = _oid(algorithm[0])
    if oid.startswith(_PKCS12_PBE_PREFIX) or oid in _PBES1:
        return [_integer(walker.children(algorithm[1])[1])]  # SEQUENCE { salt, iterations }
    if oid == _PBES2:
        return _pbkdf2_iterations(walker, walker.children(algorithm[1])[0])
    raise UnsupportedDerivation("not a password-based encryption this reader knows")


def _pbkdf2_iterations(walker: _Walker, element: Element) -> list[int]:
    """A keyDerivationFunc AlgorithmIdentifier that must be PBKDF2: SEQUENCE { salt, iterationCount, ...}."""
    kdf = walker.children(element)
    if _oid(kdf[0]) != _PBKDF2:
        raise UnsupportedDerivation("a key derivation other than PBKDF2")
    return [_integer(walker.children(kdf[1])[1])]
