"""The "Issue OCES certificate" page, with the real simulator behind it."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from certificates import vault
from certificates.choices import EventKind, Source
from certificates.models import Certificate, Event, Organization
from certificates.x509 import describe, key_matches, load_pem_list
from mitid.models import CertificateProfile

pytestmark = pytest.mark.django_db
ISSUE = reverse("mitid:issue")


def submit(client, profile: dict, pin: str | None = None, environment: str = "test"):  # type: ignore[no-untyped-def,type-arg]
    return client.post(
        ISSUE,
        {
            "pin": profile["pin"] if pin is None else pin,
            "reference_number": profile["reference_number"],
            "environment": environment,
        },
        follow=True,
    )


def test_page_needs_login(client):
    assert client.get(ISSUE).status_code == 302


def test_page_has_the_three_fields(alice_client):
    page = alice_client.get(ISSUE).content.decode()
    for label in ["PIN", "Reference number", "Environment", "Test", "Production"]:
        assert label in page


def test_issue_lands_on_the_new_certificate_with_its_key_stored_encrypted(
    alice_client, simulator, mitid_settings
):
    profile = simulator.create_profile(cvr="55667788", name="Faktura-system")
    response = submit(alice_client, profile)
    certificate = Certificate.objects.get()
    assert response.redirect_chain[-1][0] == certificate.get_absolute_url()
    page = response.content.decode()
    assert "Issued “Faktura-system”" in page
    for text in ["55667788", str(certificate.oces_uuid), "Test", "Organisation", "MitID Erhverv"]:
        assert text in page, text
    assert certificate.source == Source.MITID
    assert certificate.has_private_key and "PRIVATE KEY" not in certificate.private_key_encrypted
    assert key_matches(load_pem_list(certificate.pem)[0], vault.unseal(certificate.private_key_encrypted))
    assert [describe(c).subject_cn for c in load_pem_list(certificate.chain_pem)] == [
        "Den Danske Stat OCES udstedende-CA 1",
        "Den Danske Stat OCES rod-CA",
    ]
    assert Organization.objects.get(cvr="55667788").name == "Eksempel A/S"
    event = Event.objects.get(certificate=certificate)
    assert (event.kind, event.actor_label) == (EventKind.ISSUED, "alice")
    stored = CertificateProfile.objects.get()
    assert (stored.environment, stored.name) == ("test", "Faktura-system")
    assert list(stored.certificates.all()) == [certificate]
    assert profile["pin"] not in page


def test_the_same_reference_and_pin_twice_collects_the_same_certificate(
    alice_client, simulator, mitid_settings
):
    profile = simulator.create_profile()
    submit(alice_client, profile)
    again = submit(alice_client, profile)
    assert Certificate.objects.count() == 1
    assert again.redirect_chain[-1][0] == Certificate.objects.get().get_absolute_url()
    assert "already issued with this reference number and PIN" in again.content.decode()


def test_production_environment_issues_from_the_production_ca(alice_client, simulator, mitid_settings):
    profile = simulator.create_profile(environment="production")
    submit(alice_client, profile, environment="production")
    assert Certificate.objects.get().environment == "production"


def assert_refused(response, sentence: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert Certificate.objects.count() == 0 and Event.objects.count() == 0
    assert CertificateProfile.objects.count() == 0


def test_wrong_pin_says_how_many_attempts_are_left_then_locked(
    alice_client, simulator, mitid_settings, caplog
):
    caplog.set_level(logging.DEBUG)
    profile = simulator.create_profile()
    response = submit(alice_client, profile, pin="ZZZZ-ZZZZ")
    assert_refused(response, "The PIN is not right. 4 attempts are left before the PIN is locked.")
    page = response.content.decode()
    assert page.index('id="id_pin_helptext"') < page.index("The PIN is not right.")  # tied to the PIN field
    assert "ZZZZ-ZZZZ" not in page and "ZZZZ-ZZZZ" not in caplog.text
    for _ in range(4):
        response = submit(alice_client, profile, pin="ZZZZ-ZZZZ")
    response = submit(alice_client, profile)
    assert_refused(response, "The PIN is locked after too many wrong attempts.")
    assert profile["pin"] not in caplog.text


def test_unknown_reference(alice_client, simulator, mitid_settings):
    response = submit(alice_client, {"reference_number": "1111 2222 3333", "pin": "AAAA-BBBB"})
    assert_refused(response, "No certificate profile has this reference number in the test environment.")


def test_reference_used_elsewhere(alice_client, simulator, mitid_settings):
    """Used by another system (here: the client with its own key), the reference is refused as used."""
    import uuid

    from mitid.services import client_for

    profile = simulator.create_profile()
    client_for("test").issue(profile["reference_number"], profile["pin"], idempotency_key=str(uuid.uuid4()))
    assert_refused(submit(alice_client, profile), "This reference number has already been used")


def test_ca_unavailable_says_try_again_later_and_stores_nothing(alice_client, simulator, mitid_settings):
    simulator.cli("fault", "error", "--code", "unavailable", "--retry-after", "1", "--count", "3")
    profile = simulator.create_profile()
    assert_refused(
        submit(alice_client, profile), "MitID Erhverv is unavailable right now. Nothing was changed"
    )
    # Once the CA is back, the same reference number and PIN still work.
    submit(alice_client, profile)
    assert Certificate.objects.count() == 1


def test_a_brief_outage_is_ridden_out(alice_client, simulator, mitid_settings):
    simulator.cli("fault", "error", "--code", "unavailable", "--retry-after", "1", "--count", "1")
    simulator.cli("fault", "drop", "--count", "1")
    profile = simulator.create_profile()
    response = submit(alice_client, profile)
    assert response.status_code == 200
    assert Certificate.objects.count() == 1


def test_empty_fields_are_explained(alice_client):
    response = alice_client.post(ISSUE, {"pin": "", "reference_number": " ", "environment": "test"})
    page = response.content.decode()
    assert response.status_code == 400
    assert page.count("This field is required.") == 2
