"""Fuzzing the import: mutated, truncated and re-tagged DER and PEM of the real OCES3 certificates (and of a
PKCS#12 and a PKCS#7 made from them) never crash the reader or the import page.

Derandomised, so every run tries the same inputs; a failure prints the input that caused it.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certificates.models import Certificate
from certificates.x509 import (
    CertificateFileError,
    chain_for,
    describe,
    key_owner,
    leaves,
    read_bundle,
    to_pem,
)

from . import pki
from .conftest import ALL_FIXTURES, oces3
from .hostile_files import Node, decode, encode

PASSWORD = "fuzz"
# Tag bytes that occur in certificates and PKCS#12: SEQUENCE, SET, INTEGER, BIT/OCTET STRING, OID, strings,
# times, context-specific [0]..[3] constructed and [0]..[8] primitive, and the BER ones.
TAGS = [0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x16, 0x17, 0x18, 0x1E, 0x24]
TAGS += [0xA0, 0xA1, 0xA2, 0xA3, *range(0x80, 0x89)]
LENGTHS = [0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x85, 0xFF]
LABELS = ["CERTIFICATE", "X509 CERTIFICATE", "PKCS7", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "CERTIFICATE"]


@functools.cache
def seeds() -> list[bytes]:
    """DER of each real fixture, a PKCS#7 of all of them, and a PKCS#12 with a key and a real chain."""
    certificates = [x509.load_pem_x509_certificate(oces3(name)) for name in ALL_FIXTURES]
    ders = [c.public_bytes(serialization.Encoding.DER) for c in certificates]
    leaf = pki.make_leaf(pki.make_ca())
    return [
        *ders,
        pkcs7.serialize_certificates(certificates, serialization.Encoding.DER),
        pki.p12(leaf, [], PASSWORD),
    ]


def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


# Object identifiers whose values the readers interpret: extensions, name attributes, key and password
# algorithms. Swapping one for another makes well-formed DER that means something else.
OIDS = [
    "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.31", "2.5.29.32", "2.5.29.35",
    "1.3.6.1.5.5.7.1.1", "1.3.6.1.5.5.7.48.1", "2.5.4.3", "2.5.4.5", "2.5.4.10", "2.5.4.97",
    "1.2.840.10045.2.1", "1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10", "1.3.101.112",
    "1.2.840.113549.1.5.13", "1.2.840.113549.1.5.12", "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.6",
    "1.2.840.113549.1.12.10.1.2", "1.3.6.1.4.1.11591.4.11", "1.2.3.4.5.6.7.8.9",
]  # fmt: skip
CONTENTS = [b"", b"\x00", b"\x00" * 8, b"A" * 300, b"\xff" * 21, b"\x02", b"\x05", b"\xc3\x28", b"\x7f" * 40]


def oid_content(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return out


def paths(node: Node, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = [prefix]
    if isinstance(node[1], list):
        for index, child in enumerate(node[1]):
            found += paths(child, (*prefix, index))
    return found


def change(node: Node, path: tuple[int, ...], edit: Callable[[list[Node], int], None]) -> Node:
    """A copy of `node` in which `edit(siblings, index)` changed the list holding the element at `path`."""
    tag, content = node
    assert isinstance(content, list)
    children = list(content)
    if len(path) == 1:
        edit(children, path[0])
    else:
        children[path[0]] = change(children[path[0]], path[1:], edit)
    return tag, children


@st.composite
def structure_mutation(draw: st.DrawFn, tree: Node) -> Node:
    """One element of a decoded DER tree re-tagged, duplicated, dropped, moved or given other content;
    lengths stay right, so the readers get past parsing to the meaning."""
    path = draw(st.sampled_from(paths(tree)[1:]))
    kind = draw(st.sampled_from(["retag", "duplicate", "drop", "swap", "content", "oid"]))

    def edit(siblings: list[Node], index: int) -> None:
        tag, content = siblings[index]
        if kind == "retag":
            siblings[index] = (draw(st.sampled_from(TAGS)), content)
        elif kind == "duplicate":
            siblings.insert(index, siblings[index])
        elif kind == "drop":
            del siblings[index]
        elif kind == "swap":
            other = draw(st.integers(0, len(siblings) - 1))
            siblings[index], siblings[other] = siblings[other], siblings[index]
        elif kind == "content":
            siblings[index] = (tag, draw(st.sampled_from(CONTENTS)))
        else:
            siblings[index] = (0x06, oid_content(draw(st.sampled_from(OIDS))))

    return change(tree, path, edit)


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    seed = draw(st.sampled_from(seeds()))
    tree = decode(seed)
    for _ in range(draw(st.integers(0, 3))):
        tree = draw(structure_mutation(tree))
    data = bytearray(encode(tree))
    for _ in range(draw(st.integers(0 if data != seed else 1, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "truncate", "retag", "length", "insert", "delete", "repeat"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "retag":  # a byte that holds a tag somewhere becomes another tag
            tagged = [i for i, byte in enumerate(data) if byte in TAGS]
            data[draw(st.sampled_from(tagged)) if tagged else at] = draw(st.sampled_from(TAGS))
        elif kind == "length":  # the byte after a tag: a short, long-form or indefinite length
            data[min(at + 1, len(data) - 1)] = draw(st.sampled_from(LENGTHS))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:  # a slice repeated in place
            end = draw(st.integers(at, min(len(data), at + 200)))
            data[at:at] = data[at:end]
    wrapping = draw(st.sampled_from(["der", "pem", "pem", "chain"]))
    if wrapping == "der":
        return bytes(data)
    wrapped = pem(draw(st.sampled_from(LABELS)), bytes(data))
    return wrapped if wrapping == "pem" else oces3(ALL_FIXTURES[0]) + wrapped


FUZZ = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,  # behaviour is asserted, not time; the corpus test covers the slow files
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=hostile_bytes(), password=st.sampled_from([None, PASSWORD, "wrong"]))
def test_reader_returns_a_bundle_or_a_sentence(data, password):
    try:
        bundle = read_bundle(data, password)
    except CertificateFileError as error:
        refusal = str(error)
    else:
        refusal = ""
        # What the import does next with a bundle must not fail either.
        owner = key_owner(bundle)
        assert owner is None or owner in bundle.certificates
        for leaf in leaves(bundle):
            describe(leaf)
            to_pem(chain_for(leaf, bundle))
    assert refusal == "" or refusal.endswith("."), refusal


@pytest.mark.django_db
@settings(FUZZ, max_examples=60)
@given(data=hostile_bytes(), password=st.sampled_from(["", PASSWORD]))
def test_import_page_answers_400_with_a_sentence_or_imports(alice_client, data, password):
    before = Certificate.objects.count()
    response = alice_client.post(
        reverse("certificates:import"),
        {"file": SimpleUploadedFile("fuzz.bin", data), "password": password},
    )
    # A server error would have raised here (the test client re-raises); anything else is a page.
    assert response.status_code in (302, 400)
    if response.status_code == 400:
        assert Certificate.objects.count() == before
        sentences = [error for errors in response.context["form"].errors.values() for error in errors]
        assert sentences and all(sentence.endswith(".") for sentence in sentences), sentences
        assert all(escape(sentence) in response.content.decode() for sentence in sentences)
