"""The trust store: certificates count as genuine by signature, not by name (issue 10, item 4)."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.urls import reverse

from certificates.choices import LifecycleState, TrustSource
from certificates.models import Certificate, TrustedCA
from certificates.services import import_certificate_file, issuer_chain
from certificates.trust import BAD_SIGNATURE, ISSUER_UNKNOWN, install_builtin_roots

from . import pki
from .conftest import ISSUING_CA, OCES3_DIR, ROOT_CA, SYSTEM_2023, SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db
TEST_ROOT = "Den Danske Stat OCES rod-CA (Test - cti)"
TRUST = reverse("certificates:trust-store")


def real(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(oces3(name))


def look_alike(original: x509.Certificate, *, ca: bool = False) -> pki.Issued:
    """A certificate with the names of `original` (subject, OCES UUID, issuer) and a later expiry, signed
    by a key of its own: what anyone can make without the CA's key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(original.not_valid_after_utc + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return pki.Issued(builder.sign(key, hashes.SHA256()), key)


def openssl_verify(leaf: Path, *untrusted: Path, at: dt.datetime | None = None) -> bool:
    """The independent judge: openssl verify against the real OCES3 test root (at a moment `leaf` was
    valid, as the portal judges an expired certificate)."""
    command = ["openssl", "verify", "-CAfile", str(OCES3_DIR / ROOT_CA)]
    for path in untrusted:
        command += ["-untrusted", str(path)]
    if at is not None:
        command += ["-attime", str(int(at.timestamp()))]
    command.append(str(leaf))
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def test_shipped_oces3_roots_are_in_the_trust_store():
    rows = TrustedCA.objects.filter(source=TrustSource.BUILTIN, enabled=True)
    assert {(r.name, r.fingerprint_sha256[:8]) for r in rows} == {
        ("Den Danske Stat OCES rod-CA", "06FCB2CB"),
        (TEST_ROOT, "D1BCEC41"),
    }


def test_a_real_oces3_certificate_alone_verifies_to_the_test_root_and_says_so(alice_client):
    (outcome,) = import_certificate_file(oces3(SYSTEM_2023), actor="test")
    certificate = outcome.certificate
    assert certificate.chain_verified is True and certificate.trust_root.name == TEST_ROOT
    assert certificate.verification_error == ""
    # The chain it verified through is stored: the issuing CA, then the root.
    chain = x509.load_pem_x509_certificates(certificate.chain_pem.encode())
    assert chain == [real(ISSUING_CA), real(ROOT_CA)]
    when_valid = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert openssl_verify(OCES3_DIR / SYSTEM_2023, OCES3_DIR / ISSUING_CA, at=when_valid)
    page = alice_client.get(certificate.get_absolute_url()).content.decode()
    assert f"Chain verified to {TEST_ROOT}." in page


def test_unsigned_look_alike_with_a_later_expiry_supersedes_nothing(alice_client, tmp_path):
    (genuine,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    forged = look_alike(real(SYSTEM_2026))
    (fake,) = import_certificate_file(forged.pem, actor="mallory")
    genuine.certificate.refresh_from_db()
    assert fake.certificate.oces_uuid == genuine.certificate.oces_uuid  # the same identity by name
    assert fake.certificate.not_after > genuine.certificate.not_after
    assert genuine.certificate.state == LifecycleState.ACTIVE
    assert fake.renewal_of is None and fake.certificate.renewed_from is None
    assert not Certificate.objects.filter(renewed_from=genuine.certificate).exists()
    assert fake.certificate.chain_verified is False and fake.certificate.verification_error == BAD_SIGNATURE
    assert fake.certificate.chain_pem == ""
    page = alice_client.get(fake.certificate.get_absolute_url()).content.decode()
    assert "Not verified: its signature does not verify with the key of the CA it names" in page
    # openssl agrees: the look-alike does not verify, the genuine one does.
    (tmp_path / "fake.pem").write_bytes(forged.pem)
    assert not openssl_verify(tmp_path / "fake.pem", OCES3_DIR / ISSUING_CA)
    assert openssl_verify(OCES3_DIR / SYSTEM_2026, OCES3_DIR / ISSUING_CA)
    # And the genuine renewal of 2023 still links to the genuine 2026 certificate, not to the forgery.
    (old,) = import_certificate_file(oces3(SYSTEM_2023), actor="test")
    genuine.certificate.refresh_from_db()
    old.certificate.refresh_from_db()
    assert genuine.certificate.renewed_from == old.certificate
    assert old.certificate.state == LifecycleState.SUPERSEDED
    assert genuine.certificate.state == LifecycleState.ACTIVE


def test_forged_issuer_uploaded_with_a_real_certificate_is_not_stored_as_its_chain(alice_client):
    fake_issuer = look_alike(real(ISSUING_CA), ca=True)
    (outcome,) = import_certificate_file(oces3(SYSTEM_2023) + fake_issuer.pem, actor="mallory")
    certificate = outcome.certificate
    assert fake_issuer.pem.decode() not in certificate.chain_pem
    assert certificate.chain_verified is True
    assert x509.load_pem_x509_certificates(certificate.chain_pem.encode())[0] == real(ISSUING_CA)
    assert alice_client.get(certificate.get_absolute_url()).status_code == 200


def test_forged_issuer_of_an_untrusted_ca_is_not_stored_and_the_page_still_answers(alice_client):
    ca = pki.make_ca("Firma CA")
    leaf = pki.make_leaf(ca)
    impostor = pki.make_ca("Firma CA")  # the same name, another key
    (outcome,) = import_certificate_file(leaf.pem + impostor.pem, actor="mallory")
    certificate = outcome.certificate
    assert certificate.chain_pem == "" and certificate.chain_verified is False
    assert certificate.verification_error == BAD_SIGNATURE
    # An old row whose stored chain cannot be read still gets its page.
    Certificate.objects.filter(pk=certificate.pk).update(
        chain_pem="-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"
    )
    assert issuer_chain(Certificate.objects.get(pk=certificate.pk)) == []
    assert alice_client.get(certificate.get_absolute_url()).status_code == 200


def test_page_says_why_a_certificate_is_not_verified(alice_client):
    (outcome,) = import_certificate_file(pki.make_leaf(pki.make_ca("Ukendt CA")).pem, actor="test")
    assert outcome.certificate.verification_error == ISSUER_UNKNOWN
    page = alice_client.get(outcome.certificate.get_absolute_url()).content.decode()
    assert "Not verified: the certificate of the CA that issued it is unknown" in page


# --- the trust store page -------------------------------------------------------------------------------


@pytest.fixture
def admin_client(django_user_model) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.dk", "pw-123456789"))
    return client


def upload_ca(client: Client, data: bytes):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(TRUST, {"certificate": SimpleUploadedFile("ca.pem", data)}, follow=True)


def test_trust_store_page_is_for_administrators_only(client, olga_client, alice_client):
    assert client.get(TRUST).status_code == 302  # to the login page
    assert olga_client.get(TRUST).status_code == 403  # an operator
    row = TrustedCA.objects.first()
    assert olga_client.post(reverse("certificates:trust-remove", args=[row.pk])).status_code == 403
    assert TrustedCA.objects.filter(pk=row.pk, enabled=True).exists()
    assert alice_client.get(TRUST).status_code == 200  # an administrator


def test_adding_a_ca_verifies_its_certificates_and_removing_it_unverifies_them(admin_client):
    ca = pki.make_ca("Firma Root CA")
    (outcome,) = import_certificate_file(pki.make_leaf(ca).pem, actor="test")
    assert outcome.certificate.chain_verified is False

    response = upload_ca(admin_client, ca.pem)
    page = response.content.decode()
    assert "“Firma Root CA” is now trusted." in page and "now verified: 1" in page
    certificate = Certificate.objects.get(pk=outcome.certificate.pk)
    assert certificate.chain_verified is True and certificate.trust_root.name == "Firma Root CA"
    assert certificate.chain_pem == ca.pem.decode()

    row = TrustedCA.objects.get(name="Firma Root CA")
    response = admin_client.post(reverse("certificates:trust-remove", args=[row.pk]), follow=True)
    page = response.content.decode()
    assert "“Firma Root CA” is no longer trusted." in page and "no longer verified: 1" in page
    certificate.refresh_from_db()
    assert certificate.chain_verified is False and certificate.trust_root is None


def test_a_certificate_that_is_not_a_ca_cannot_be_trusted(admin_client):
    response = upload_ca(admin_client, pki.make_leaf(pki.make_ca()).pem)
    assert response.status_code == 400
    assert "This is not a CA certificate, so it cannot be trusted as one." in response.content.decode()


def test_a_removed_shipped_root_stays_removed_after_migrate(admin_client):
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    row = TrustedCA.objects.get(name=TEST_ROOT)
    admin_client.post(reverse("certificates:trust-remove", args=[row.pk]))
    outcome.certificate.refresh_from_db()
    assert outcome.certificate.chain_verified is False
    assert install_builtin_roots() == 0
    assert not TrustedCA.objects.get(pk=row.pk).enabled
    assert f"<td>{TEST_ROOT}<br>" not in admin_client.get(TRUST).content.decode()
    # Trusting it again brings the certificates back.
    upload_ca(admin_client, oces3(ROOT_CA))
    outcome.certificate.refresh_from_db()
    assert outcome.certificate.chain_verified is True


def test_certificates_the_simulator_issues_verify_to_its_configured_root(renewable):
    certificate = renewable(cvr="31313131", name="Tillid")
    assert certificate.chain_verified is True
    assert certificate.trust_root.source == TrustSource.CONFIGURED


def test_reverify_command_checks_everything_again(alice_client):
    from django.core.management import call_command

    ca = pki.make_ca("Kommando CA")
    import_certificate_file(pki.make_leaf(ca).pem, actor="test")
    Certificate.objects.update(chain_verified=None)  # as every certificate stored before the trust store
    page = alice_client.get(Certificate.objects.get().get_absolute_url()).content.decode()
    assert "Not verified: the chain has not been checked yet." in page
    TrustedCA.objects.create(
        name="Kommando CA",
        subject_dn="CN=Kommando CA",
        fingerprint_sha256=ca.certificate.fingerprint(hashes.SHA256()).hex().upper(),
        not_after=ca.certificate.not_valid_after_utc,
        pem=ca.pem.decode(),
    )
    call_command("reverify_certificates")
    assert Certificate.objects.get().chain_verified is True


def test_oces_uuid_is_not_enough_to_link(alice_client):
    """A certificate from another trusted CA that copies the UUID does not link to an OCES3 one either."""
    ca = pki.make_ca("Anden CA")
    TrustedCA.objects.create(
        name="Anden CA",
        subject_dn="CN=Anden CA",
        fingerprint_sha256=ca.certificate.fingerprint(hashes.SHA256()).hex().upper(),
        not_after=ca.certificate.not_valid_after_utc,
        pem=ca.pem.decode(),
    )
    (genuine,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    other = pki.make_leaf(ca, real(SYSTEM_2026).subject, not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    (copy,) = import_certificate_file(other.pem, actor="test")
    assert copy.certificate.chain_verified is True and copy.renewal_of is None
    genuine.certificate.refresh_from_db()
    assert genuine.certificate.state == LifecycleState.ACTIVE
    assert uuid.UUID(str(copy.certificate.oces_uuid)) == genuine.certificate.oces_uuid
