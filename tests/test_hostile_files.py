"""Files made to crash, stall or fool the import (tests/hostile_files.py): each gets a sentence or is stored
safely, through the reader, the import page and the command line, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from certificates import der
from certificates import x509 as certificate_files
from certificates.models import Certificate, Event, Organization
from certificates.services import export_pkcs12, import_certificate_file
from certificates.x509 import CertificateFileError, pem_blocks, read_bundle

from . import hostile_files, pki
from .conftest import ISSUING_CA, ROOT_CA, SYSTEM_2023, oces3

IMPORT = reverse("certificates:import")


def upload(client, data: bytes, password: str = ""):  # type: ignore[no-untyped-def]
    return client.post(IMPORT, {"file": SimpleUploadedFile("hostile.bin", data), "password": password})


def nothing_stored() -> bool:
    return not (Certificate.objects.exists() or Event.objects.exists() or Organization.objects.exists())


@pytest.mark.parametrize("case", hostile_files.CORPUS)
def test_each_hostile_file_gets_its_sentence_from_the_reader(case):
    hostile = hostile_files.CORPUS[case]
    with pytest.raises(CertificateFileError, match=hostile.sentence):
        read_bundle(hostile.build(), hostile.password or None)


@pytest.mark.django_db
def test_each_hostile_file_gets_400_and_its_sentence_on_the_page_and_stores_nothing(alice_client):
    for case, hostile in hostile_files.CORPUS.items():
        response = upload(alice_client, hostile.build(), hostile.password)
        assert response.status_code == 400, case
        assert hostile.sentence in response.content.decode(), case
        assert nothing_stored(), case


def test_pkcs12_asking_for_too_many_iterations_never_reaches_openssl(monkeypatch):
    def derive(*args: object) -> None:
        raise AssertionError("OpenSSL was asked to derive a key")

    monkeypatch.setattr(certificate_files.pkcs12, "load_pkcs12", derive)
    monkeypatch.setattr(certificate_files.serialization, "load_pem_private_key", derive)
    for build, password in [
        (lambda: hostile_files.pkcs12_file(mac_iterations=hostile_files.HIGH), "hostile"),
        (lambda: hostile_files.pkcs12_file(mac_iterations=2**31 - 1), None),
        (lambda: hostile_files.pkcs12_file(kdf_iterations=1_000_001), "hostile"),
        (lambda: hostile_files.encrypted_key_pem(1_000_001), "hostile"),
    ]:
        with pytest.raises(CertificateFileError, match="more than certificate tools write"):
            read_bundle(build(), password)


def test_iteration_limit_is_a_setting_and_counts_the_whole_file(settings):
    data = hostile_files.pkcs12_file()  # MAC 2,048, certificates and key 2,049 each
    settings.TRUSTVIEW_IMPORT_MAX_ITERATIONS = 2049
    assert read_bundle(data, "hostile").private_key is not None
    settings.TRUSTVIEW_IMPORT_MAX_ITERATIONS = 2048
    with pytest.raises(CertificateFileError, match=r"6,146 password iterations|2,049 password iterations"):
        read_bundle(data, "hostile")


def test_iteration_counts_read_from_pkcs12_files_agree_with_openssl(tmp_path):
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem + leaf.key_pem())
    for options, expected in [
        ([], [2048, 2048, 2048]),
        (["-iter", "3000", "-maciter"], [3000, 3000, 3000]),
        (["-legacy"], [2048, 2048, 2048]),
        (["-certpbe", "NONE", "-nomac"], [2048]),
    ]:
        data = subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-in",
                str(tmp_path / "leaf.pem"),
                "-passout",
                "pass:pw",
                *options,
            ],
            capture_output=True,
            check=True,
        ).stdout
        assert der.pkcs12_iterations(data) == expected, options
        assert read_bundle(data, "pw").private_key is not None


@pytest.mark.django_db
def test_the_portals_own_pkcs12_export_imports_again(alice):
    ca = pki.make_ca()
    (outcome,) = import_certificate_file(pki.p12(pki.make_leaf(ca), [ca], "pw"), password="pw")
    export = export_pkcs12(outcome.certificate, alice)
    assert read_bundle(export.data, export.password).private_key is not None


def test_certificate_limit_is_a_setting_and_counts_every_block(settings):
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 3
    chain = oces3(SYSTEM_2023) + oces3(ISSUING_CA) + oces3(ROOT_CA)
    assert len(read_bundle(chain).certificates) == 3
    with pytest.raises(CertificateFileError, match="more than 3 certificates"):
        read_bundle(chain + oces3(ROOT_CA))  # the same certificate twice counts twice: it was sent


def test_pem_blocks_are_found_in_file_order_with_unknown_and_unended_ones_skipped():
    cert, ca = oces3(SYSTEM_2023), oces3(ISSUING_CA)
    key = pki.make_leaf(pki.make_ca()).key_pem("pw")
    data = (
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        + b"-----BEGIN PKCS7-----\n"  # never ended
        + cert
        + b"text between\n"
        + key
        + ca
        + b"-----BEGIN CERTIFICATE-----\ncut short"
    )
    blocks = list(pem_blocks(data))
    assert [label for label, _text in blocks] == [b"CERTIFICATE", b"ENCRYPTED PRIVATE KEY", b"CERTIFICATE"]
    assert [text for _label, text in blocks] == [cert.strip(), key.strip(), ca.strip()]


def test_older_certificate_labels_read_like_certificate():
    body = oces3(SYSTEM_2023).strip()[
        len(b"-----BEGIN CERTIFICATE-----") : -len(b"-----END CERTIFICATE-----")
    ]
    for label in [b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"]:
        data = b"-----BEGIN " + label + b"-----" + body + b"-----END " + label + b"-----\n"
        assert read_bundle(data).certificates == read_bundle(oces3(SYSTEM_2023)).certificates


@pytest.mark.django_db
def test_nul_and_overlong_text_is_stored_visibly_replaced_and_shortened(alice_client):
    stored = {}
    for case, build in hostile_files.STORABLE.items():
        response = upload(alice_client, build())
        assert response.status_code == 302, (case, response.content.decode()[:2000])
        stored[case] = Certificate.objects.order_by("-id").first()

    nul = stored["NUL in the common name"]
    assert nul.subject_cn == "evil\ufffd.example"
    assert nul.subject_organization == "Nul\ufffd A/S" and "\x00" not in nul.subject_dn

    long = stored["300-character organisation and common name"]
    assert long.subject_cn == "C" * 254 + "…" and long.subject_organization == "O" * 254 + "…"
    assert "O" * 300 in long.subject_dn and "C" * 300 in long.subject_dn  # the whole name stays

    assert stored["NUL in a subjectAltName"].subject_alt_names == ["DNS:a\ufffdb.example"]
    assert stored["OCSP location that is not a URL"].ocsp_urls == []
    signature = stored["signature algorithm OID of 102 characters"].signature_algorithm
    assert len(signature) == 64 and signature.startswith("1.3.6.1.4.1.99999.") and signature.endswith("…")

    organisation = stored["organisation of 300 characters with a CVR"].organization
    assert organisation.cvr == "12345678" and organisation.name == "O" * 199 + "…"

    page = alice_client.get(nul.get_absolute_url())
    assert page.status_code == 200 and "evil\ufffd.example" in page.content.decode()


@pytest.mark.django_db
def test_import_command_goes_on_after_hostile_files_and_ends_with_a_summary(tmp_path, capsys):
    files = {
        "quadratic.pem": hostile_files.quadratic_pem(),
        "system.pem": oces3(SYSTEM_2023),
        "duplicate-extensions.der": hostile_files.duplicate_extensions(),
        "nul.der": hostile_files.STORABLE["NUL in the common name"](),
        "mac-iterations.p12": hostile_files.pkcs12_file(mac_iterations=hostile_files.HIGH),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in files]
    with pytest.raises(CommandError, match="3 of 5 files were not imported") as failed:
        call_command("import_certificates", *paths)
    assert failed.value.returncode == 1
    captured = capsys.readouterr()
    assert "2 imported, 0 already present, 3 failed." in captured.out
    assert "quadratic.pem: The file is damaged" in captured.err
    assert (
        "duplicate-extensions.der: A certificate in the file has a field that cannot be read" in captured.err
    )
    assert "mac-iterations.p12: The file asks for 100,000,000 password iterations" in captured.err

    with pytest.raises(CommandError):
        call_command("import_certificates", *paths)
    assert "0 imported, 2 already present, 3 failed." in capsys.readouterr().out
    assert Certificate.objects.count() == 2
