"""Reading certificate files and OCES3 fields, judged against OpenSSL's command line and the real fixtures."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from certificates.x509 import CertificateFileError, chain_for, describe, key_owner, leaves, read_bundle

from . import pki
from .conftest import (
    ISSUING_CA,
    OCES3_DIR,
    ROOT_CA,
    SKAT_CVR,
    SKAT_UUID,
    SYSTEM_2023,
    SYSTEM_2026,
    oces3,
)
from .support.openssl import openssl_output as openssl


def only(data: bytes, password: str | None = None):  # type: ignore[no-untyped-def]
    bundle = read_bundle(data, password)
    (leaf,) = leaves(bundle)
    return describe(leaf)


def test_real_oces3_system_certificate_gives_its_oces_fields():
    facts = only(oces3(SYSTEM_2023))
    assert facts.subject_cn == "Skatteministeriet - B2B gateway TSE TEST"
    assert facts.cvr == SKAT_CVR
    assert facts.oces_uuid == uuid.UUID(SKAT_UUID)
    assert facts.environment == "test"
    assert facts.oces_type == "organisation"
    assert facts.policies == ["0.4.0.2042.1.1", "1.2.208.169.1.1.1.3.7"]
    assert facts.subject_organization == "Skatteforvaltningen"
    assert facts.issuer_cn == "Den Danske Stat OCES udstedende-CA 1"
    assert (facts.key_algorithm, facts.key_size) == ("RSA", 3072)
    assert facts.signature_algorithm == "RSASSA-PSS with SHA-256"
    assert facts.ocsp_urls == ["http://ca1.cti-gov.dk/ocsp"]
    assert facts.crl_urls == ["http://ca1.cti-gov.dk/oces/issuing/1/crl/issuing.crl"]
    assert facts.is_ca is False
    assert facts.subject_dn.startswith("CN=Skatteministeriet - B2B gateway TSE TEST, serialNumber=UI:DK-O:G:")
    assert "organizationIdentifier=NTRDK-19552101" in facts.subject_dn


def test_renewed_fixture_keeps_identity_with_versioned_policy():
    old, new = only(oces3(SYSTEM_2023)), only(oces3(SYSTEM_2026))
    assert (new.cvr, new.oces_uuid, new.oces_type) == (old.cvr, old.oces_uuid, old.oces_type)
    assert "1.2.208.169.1.1.1.3.7.1" in new.policies
    assert new.serial_number != old.serial_number
    assert new.not_before > old.not_before


@pytest.mark.parametrize("fixture", [ROOT_CA, ISSUING_CA, SYSTEM_2023, SYSTEM_2026])
def test_serial_fingerprint_and_dates_agree_with_openssl(fixture):
    path = str(OCES3_DIR / fixture)
    facts = only(oces3(fixture))
    serial = openssl("x509", "-in", path, "-noout", "-serial").strip().split("=", 1)[1]
    fingerprint = openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256").strip().split("=", 1)[1]
    end_date = (
        openssl("x509", "-in", path, "-noout", "-enddate", "-dateopt", "iso_8601").strip().split("=", 1)[1]
    )
    assert facts.serial_number == serial
    assert facts.fingerprint_sha256 == fingerprint.replace(":", "")
    assert facts.not_after.strftime("%Y-%m-%d %H:%M:%SZ") == end_date


def test_ca_certificates_are_test_environment_without_oces_type():
    root = only(oces3(ROOT_CA))
    assert root.is_ca and root.environment == "test" and root.oces_type == "" and root.cvr == ""
    assert root.signature_algorithm == "RSASSA-PSS with SHA-512"


def test_der_reads_like_pem():
    der = subprocess.run(
        ["openssl", "x509", "-in", str(OCES3_DIR / SYSTEM_2026), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert only(der).fingerprint_sha256 == only(oces3(SYSTEM_2026)).fingerprint_sha256


def test_pem_bundle_in_any_order_gives_the_leaf_and_its_chain_nearest_first():
    bundle = read_bundle(oces3(ROOT_CA) + oces3(SYSTEM_2026) + oces3(ISSUING_CA))
    (leaf,) = leaves(bundle)
    assert describe(leaf).subject_cn == "Skatteministeriet - B2B gateway TSE TEST"
    assert [describe(c).subject_cn for c in chain_for(leaf, bundle)] == [
        "Den Danske Stat OCES udstedende-CA 1",
        "Den Danske Stat OCES rod-CA",
    ]


def test_pem_with_two_unrelated_leaves_gives_both():
    bundle = read_bundle(oces3(SYSTEM_2023) + oces3(SYSTEM_2026))
    assert len(leaves(bundle)) == 2


def test_oces2_subject_gives_its_cvr_from_serial_number_or_organization():
    ca = pki.make_ca("TRUST2408 OCES CA II")
    by_serial = pki.make_leaf(ca, pki.name("Jens", serialNumber="CVR:12345678-UID:1234567890123"))
    by_org = pki.make_leaf(ca, pki.name("System", O="Firma A/S // CVR:87654321"))
    assert only(by_serial.pem).cvr == "12345678"
    assert only(by_org.pem).cvr == "87654321"
    assert only(by_org.pem).environment == "production"


def test_policy_prefix_gives_the_oces_type():
    ca = pki.make_ca()
    employee = pki.make_leaf(ca, policies=["1.2.208.169.1.1.1.2.7.1"])
    other = pki.make_leaf(ca, policies=["2.23.140.1.2.1"], san=["www.example.dk"])
    assert only(employee.pem).oces_type == "employee"
    plain = only(other.pem)
    assert (plain.oces_type, plain.environment, plain.cvr) == ("", "", "")
    assert plain.subject_alt_names == ["DNS:www.example.dk"]


def test_pkcs12_made_by_openssl_opens_with_its_password(tmp_path):
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem + leaf.key_pem())
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    data = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-export",
            "-in",
            str(tmp_path / "leaf.pem"),
            "-certfile",
            str(tmp_path / "ca.pem"),
            "-passout",
            "pass:s3cret pw",
        ],
        capture_output=True,
        check=True,
    ).stdout
    bundle = read_bundle(data, "s3cret pw")
    assert key_owner(bundle) is not None
    assert [describe(c).subject_cn for c in leaves(bundle)] == ["leaf.example"]


BAD_FILES = {
    "text": (b"hello, this is not a certificate\n", None, "The file is not a certificate."),
    "empty": (b"  \n", None, "The file is empty."),
    "random binary": (bytes(range(256)) * 4, None, "The file is not a certificate."),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_get_a_sentence(case):
    data, password, sentence = BAD_FILES[case]
    with pytest.raises(CertificateFileError, match=sentence):
        read_bundle(data, password)


def test_truncated_pem_and_der_are_damaged():
    pem = oces3(SYSTEM_2023)
    with pytest.raises(CertificateFileError, match="The file is damaged"):
        read_bundle(pem[: len(pem) // 2])
    full_der = subprocess.run(
        ["openssl", "x509", "-in", str(OCES3_DIR / SYSTEM_2023), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    with pytest.raises(CertificateFileError, match="The file is damaged"):
        read_bundle(full_der[:-40])


def test_key_that_belongs_to_another_certificate_is_refused():
    ca = pki.make_ca()
    leaf, stranger = pki.make_leaf(ca), pki.make_leaf(ca)
    with pytest.raises(CertificateFileError, match="does not belong to the certificate"):
        read_bundle(leaf.pem + stranger.key_pem())


def test_encrypted_key_needs_its_password_and_the_password_is_never_in_the_message():
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    data = leaf.pem + leaf.key_pem("right horse battery")
    with pytest.raises(CertificateFileError, match="protected by a password") as missing:
        read_bundle(data)
    assert missing.value.field == "password"
    with pytest.raises(CertificateFileError, match="does not open the private key") as wrong:
        read_bundle(data, "wrong horse battery")
    assert "wrong horse" not in str(wrong.value)
    assert key_owner(read_bundle(data, "right horse battery")) is not None
