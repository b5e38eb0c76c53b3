"""The certificate search picks its look-up from what was typed: a CVR, an OCES UUID, a reference
number, the start of a serial number or fingerprint, or words in the common name or organisation name."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from certificates.models import Certificate, Organization, SearchTerms
from certificates.services import import_certificate_file
from mitid.models import CertificateProfile

from .conftest import SKAT_CVR, SKAT_UUID, SYSTEM_2026, oces3

LIST = reverse("certificates:list")
SKAT = "Skatteministeriet - B2B gateway TSE TEST"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("19552101", SearchTerms(cvr="19552101")),
        (" CVR:19552101 ", SearchTerms(cvr="19552101")),
        ("NTRDK-19552101", SearchTerms(cvr="19552101")),
        (SKAT_UUID, SearchTerms(oces_uuid=uuid.UUID(SKAT_UUID))),
        (f"UI:DK-O:G:{SKAT_UUID.upper()}", SearchTerms(oces_uuid=uuid.UUID(SKAT_UUID))),
        ("4821 7730 1290", SearchTerms(reference="482177301290")),
        ("4821-7730-1290", SearchTerms(reference="482177301290")),
        ("482177301290", SearchTerms(reference="482177301290", hex_prefix="482177301290")),
        ("4C:5F:96:B2", SearchTerms(hex_prefix="4C5F96B2")),
        ("4c5f96b2ff8b", SearchTerms(hex_prefix="4C5F96B2FF8B")),
        ("cafe", SearchTerms(hex_prefix="CAFE", words="cafe")),
        ("B2B  gateway", SearchTerms(words="B2B gateway")),
        ("Herning Bank 1234", SearchTerms(words="Herning Bank 1234")),
        ("   ", None),
    ],
)
def test_what_was_typed_chooses_the_look_up(typed, expected):
    assert SearchTerms.parse(typed) == expected


def names(client, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.subject_cn for c in client.get(LIST, {"q": query}).context["page"].object_list]


@pytest.mark.django_db
def test_uuid_reference_number_and_organisation_name_find_the_certificate(alice_client):
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    certificate = outcome.certificate
    profile = CertificateProfile.objects.create(name="Gateway", reference_number="4821 7730 1290")
    profile.certificates.add(certificate)
    Organization.objects.filter(pk=certificate.organization_id).update(name="Skattestyrelsen Økonomi")
    assert names(alice_client, SKAT_UUID.upper()) == [SKAT]
    assert names(alice_client, "4821-7730-1290") == [SKAT]
    assert names(alice_client, "styrelsen Øko") == [SKAT]  # in the organisation's name, not the CN
    assert names(alice_client, SKAT_CVR) == [SKAT]
    assert names(alice_client, "4821 7730 1291") == []
    assert names(alice_client, str(uuid.uuid4())) == []
    # Eight digits are a CVR only: the same digits in a common name are not searched.
    Certificate.objects.filter(pk=certificate.pk).update(subject_cn="system 87654321")
    assert names(alice_client, "87654321") == [] and names(alice_client, "system 8765") == ["system 87654321"]
