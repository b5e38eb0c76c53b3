"""Downloads from a certificate's page: PEM, chain, and a PKCS#12 with a fresh password shown once."""

from __future__ import annotations

import base64
import logging
import re
import subprocess

import pytest
from django.urls import reverse

from certificates.choices import EventKind
from certificates.models import Event
from certificates.services import import_certificate_file
from certificates.x509 import key_matches, read_bundle

from . import pki
from .conftest import SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db


@pytest.fixture
def held():  # type: ignore[no-untyped-def]
    """A certificate imported with its chain (root and issuing CA) and private key."""
    root = pki.make_ca("Eksempel Root")
    issuing = pki.make_ca("Eksempel Issuing CA", issuer=root)
    leaf = pki.make_leaf(issuing, pki.name("Lønsystem æøå"))
    (outcome,) = import_certificate_file(pki.p12(leaf, [issuing, root], "pw"), password="pw", actor="test")
    return outcome.certificate, root, leaf


def test_pem_and_chain_downloads_verify_with_openssl(alice_client, held, tmp_path):
    certificate, root, _ = held
    pem = alice_client.get(reverse("certificates:download-pem", args=[certificate.pk]))
    chain = alice_client.get(reverse("certificates:download-chain", args=[certificate.pk]))
    serial = certificate.serial_number[:8].lower()
    assert pem["Content-Disposition"] == f'attachment; filename="loensystem-aeoeaa-{serial}.pem"'
    assert chain["Content-Disposition"] == f'attachment; filename="loensystem-aeoeaa-{serial}-chain.pem"'
    assert pem.content.decode().count("BEGIN CERTIFICATE") == 1
    assert chain.content.decode().count("BEGIN CERTIFICATE") == 3
    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "chain.pem").write_bytes(chain.content)
    (tmp_path / "leaf.pem").write_bytes(pem.content)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-untrusted",
            str(tmp_path / "chain.pem"),
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")


def test_pkcs12_opens_in_openssl_with_the_password_shown_once(alice_client, held, tmp_path, caplog):
    certificate, _, leaf = held
    caplog.set_level(logging.DEBUG)
    url = reverse("certificates:download-pkcs12", args=[certificate.pk])
    assert alice_client.get(url).status_code == 405  # a download makes a password: POST only

    response = alice_client.post(url)
    page = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    password = re.search(r'id="pkcs12-password" type="text" readonly value="([^"]+)"', page).group(1)
    data = base64.b64decode(re.search(r'href="data:application/x-pkcs12;base64,([^"]+)"', page).group(1))
    (tmp_path / "download.p12").write_bytes(data)
    opened = subprocess.run(
        ["openssl", "pkcs12", "-in", str(tmp_path / "download.p12"), "-passin", f"pass:{password}", "-nodes"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.count("BEGIN CERTIFICATE") == 3 and "BEGIN PRIVATE KEY" in opened.stdout
    bundle = read_bundle(data, password)
    assert key_matches(leaf.certificate, bundle.private_key)
    wrong = subprocess.run(
        ["openssl", "pkcs12", "-in", str(tmp_path / "download.p12"), "-passin", "pass:guess", "-nokeys"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0

    second = alice_client.post(url).content.decode()
    assert password not in second  # every download makes a new password
    assert password not in caplog.text
    assert Event.objects.filter(certificate=certificate, kind=EventKind.KEY_DOWNLOADED).count() == 2
    assert "Key downloaded" in alice_client.get(certificate.get_absolute_url()).content.decode()


def test_monitor_only_certificate_offers_no_pkcs12(alice_client):
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    page = alice_client.get(outcome.certificate.get_absolute_url()).content.decode()
    assert "Download PKCS#12" not in page
    response = alice_client.post(
        reverse("certificates:download-pkcs12", args=[outcome.certificate.pk]), follow=True
    )
    assert "The portal holds no private key for this certificate (monitor only)." in response.content.decode()
    assert not Event.objects.filter(kind=EventKind.KEY_DOWNLOADED).exists()


def test_downloads_need_login(client, held):
    certificate = held[0]
    for url in [
        reverse("certificates:download-pem", args=[certificate.pk]),
        reverse("certificates:download-chain", args=[certificate.pk]),
    ]:
        assert client.get(url).status_code == 302
    assert client.post(reverse("certificates:download-pkcs12", args=[certificate.pk])).status_code == 302
