"""Importing through the browser form: real fixtures, the renewal link, and every bad input's sentence."""

from __future__ import annotations

import logging
import subprocess

import pytest
from django.urls import reverse

from certificates import vault
from certificates.choices import EventKind, LifecycleState
from certificates.models import Certificate, Event, Organization
from certificates.x509 import key_matches

from . import pki
from .conftest import ALL_FIXTURES, ISSUING_CA, ROOT_CA, SKAT_CVR, SKAT_UUID, SYSTEM_2023, SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db
IMPORT = reverse("certificates:import")


def upload(client, data: bytes, filename: str = "cert.pem", password: str = ""):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        IMPORT, {"file": SimpleUploadedFile(filename, data), "password": password}, follow=True
    )


def test_import_page_needs_login(client):
    response = client.get(IMPORT)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_each_real_fixture_imports_and_the_2026_certificate_shows_as_renewal(alice_client):
    for name in ALL_FIXTURES:
        response = upload(alice_client, oces3(name), name)
        assert response.status_code == 200
        assert "Imported" in response.content.decode()
    assert Certificate.objects.count() == 4

    old = Certificate.objects.get(not_after__year=2026)
    new = Certificate.objects.get(not_after__year=2029)
    assert new.renewed_from == old
    assert old.state == LifecycleState.SUPERSEDED and new.state == LifecycleState.ACTIVE
    assert Organization.objects.get(cvr=SKAT_CVR).name == "Skatteforvaltningen"

    page = alice_client.get(new.get_absolute_url()).content.decode()
    for text in [
        SKAT_CVR,
        SKAT_UUID,
        "Test",
        "2026-03-25",
        "2029-03-24",
        "Organisation",
        "RSASSA-PSS with SHA-256",
    ]:
        assert text in page, text
    assert old.get_absolute_url() in page  # "Renews the certificate valid to 2026-04-10"
    assert "Renews" in page and "2026-04-10" in page
    # The issuing CA imported on its own is linked as this certificate's issuer, and the root above it.
    issuing = Certificate.objects.get(subject_cn="Den Danske Stat OCES udstedende-CA 1")
    assert issuing.get_absolute_url() in page

    old_page = alice_client.get(old.get_absolute_url()).content.decode()
    assert "Superseded" in old_page and "Renewed by" in old_page and new.get_absolute_url() in old_page
    assert "Expired" in old_page  # 2026-04-10 is in the past


def test_renewal_imported_before_its_predecessor_is_still_linked(alice_client):
    upload(alice_client, oces3(SYSTEM_2026))
    response = upload(alice_client, oces3(SYSTEM_2023))
    new = Certificate.objects.get(not_after__year=2029)
    old = Certificate.objects.get(not_after__year=2026)
    assert new.renewed_from == old
    assert (old.state, new.state) == (LifecycleState.SUPERSEDED, LifecycleState.ACTIVE)
    assert "Imported" in response.content.decode()


def test_same_certificate_twice_is_one_certificate(alice_client):
    upload(alice_client, oces3(SYSTEM_2023))
    response = upload(alice_client, oces3(SYSTEM_2023), "again.cer")
    assert "Already present" in response.content.decode()
    assert Certificate.objects.count() == 1
    assert Event.objects.filter(kind=EventKind.IMPORTED).count() == 1


def test_import_writes_history_with_who_and_which_file(alice_client):
    upload(alice_client, oces3(SYSTEM_2023), "skat-2023.pem")
    event = Event.objects.get()
    assert (event.kind, event.actor_label) == (EventKind.IMPORTED, "alice")
    assert "skat-2023.pem" in event.text
    page = alice_client.get(event.certificate.get_absolute_url()).content.decode()
    assert "skat-2023.pem" in page and "alice" in page


def test_bundle_with_chain_imports_the_leaf_and_stores_the_chain(alice_client):
    response = upload(alice_client, oces3(ROOT_CA) + oces3(SYSTEM_2026) + oces3(ISSUING_CA), "bundle.pem")
    certificate = Certificate.objects.get()
    assert certificate.subject_cn == "Skatteministeriet - B2B gateway TSE TEST"
    assert certificate.chain_pem.count("BEGIN CERTIFICATE") == 2
    assert "Den Danske Stat OCES rod-CA" in response.content.decode()  # chain shown on the detail page


def test_pkcs12_with_password_stores_the_key_encrypted(alice_client, tmp_path):
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca, pki.oces3_subject("Mit system", "12345678", pki.uuid.uuid4()))
    response = upload(alice_client, pki.p12(leaf, [ca], "Hemmelig 42"), "system.p12", password="Hemmelig 42")
    certificate = Certificate.objects.get()
    assert "Its private key is stored encrypted" in response.content.decode()
    assert "PRIVATE KEY" not in certificate.private_key_encrypted
    assert key_matches(leaf.certificate, vault.unseal(certificate.private_key_encrypted))
    assert certificate.chain_pem.count("BEGIN CERTIFICATE") == 1


def test_key_added_to_a_monitor_only_certificate_on_second_import(alice_client):
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    upload(alice_client, leaf.pem)
    assert not Certificate.objects.get().has_private_key
    response = upload(alice_client, leaf.pem + leaf.key_pem())
    assert "Its private key has been added" in response.content.decode()
    assert Certificate.objects.get().has_private_key
    assert Event.objects.filter(kind=EventKind.KEY_ADDED).count() == 1


def _truncated_der() -> bytes:
    from .conftest import OCES3_DIR

    der = subprocess.run(
        ["openssl", "x509", "-in", str(OCES3_DIR / SYSTEM_2023), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    return der[: len(der) - 100]


def _damaged_base64() -> bytes:
    pem = oces3(SYSTEM_2023).decode().splitlines()
    pem[5] = "!!!!" + pem[5][4:]
    return "\n".join(pem).encode()


def _mismatched_key() -> bytes:
    ca = pki.make_ca()
    return pki.make_leaf(ca).pem + pki.make_leaf(ca).key_pem()


def _pkcs12() -> bytes:
    ca = pki.make_ca()
    return pki.p12(pki.make_leaf(ca), [ca], "the right one")


BAD_INPUTS = {
    "not a certificate": (
        lambda: b"Dear admin,\nthis is a letter.\n",
        "",
        "file",
        "The file is not a certificate.",
    ),
    "corrupt PEM": (_damaged_base64, "", "file", "The file is damaged"),
    "truncated PEM": (lambda: oces3(SYSTEM_2023)[:700], "", "file", "The file is damaged"),
    "truncated DER": (_truncated_der, "", "file", "The file is damaged"),
    "wrong PKCS#12 password": (
        _pkcs12,
        "the wrong one",
        "password",
        "The password does not open this PKCS#12 file.",
    ),
    "PKCS#12 without password": (_pkcs12, "", "password", "This PKCS#12 file is protected by a password."),
    "key of another certificate": (_mismatched_key, "", "file", "does not belong to the certificate"),
    "over 1 MiB": (
        lambda: oces3(SYSTEM_2023) + b"\n" * (1024 * 1024),
        "",
        "file",
        "The file is larger than 1024 KiB",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gets_its_sentence_at_its_field_and_stores_nothing(alice_client, caplog, case):
    make, password, field, sentence = BAD_INPUTS[case]
    caplog.set_level(logging.DEBUG)
    response = upload(alice_client, make(), "upload.bin", password=password)
    assert response.status_code == 400
    page = response.content.decode()
    assert sentence in page
    # The sentence sits in the element that the field's aria-describedby names.
    assert f'id="id_{field}_helptext">' in page
    assert page.index(f'id="id_{field}_helptext"') < page.index(sentence)
    assert "Traceback" not in page
    assert (
        Certificate.objects.count() == 0 and Event.objects.count() == 0 and Organization.objects.count() == 0
    )
    if password:
        assert password not in page and password not in caplog.text


def test_file_with_two_leaves_and_a_foreign_key_stores_neither_leaf(alice_client):
    """A file is imported whole or not at all."""
    ca = pki.make_ca()
    good, other = pki.make_leaf(ca), pki.make_leaf(ca)
    upload(alice_client, good.pem + other.pem + pki.make_leaf(ca).key_pem())
    assert Certificate.objects.count() == 0
