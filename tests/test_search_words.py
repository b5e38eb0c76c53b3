"""Words in the search: whole words of the common name first (a full-text index on PostgreSQL), parts of
words when those find less than a page; host names and hyphenated names are words apart."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import limit_to_organisations
from certificates.models import ORGANISATION_MATCH_LIMIT, Certificate, Organization

pytestmark = pytest.mark.django_db
LIST = reverse("certificates:list")


def add(*names: str) -> None:
    now = timezone.now()
    Certificate.objects.bulk_create(
        Certificate(
            subject_cn=name,
            subject_dn=f"CN={name}",
            issuer_cn="Test CA",
            issuer_dn="CN=Test CA",
            serial_number=uuid.uuid4().hex,
            fingerprint_sha256=uuid.uuid4().hex * 2,
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=100 + index),
            key_algorithm="EC",
            signature_algorithm="ECDSA with SHA-256",
            pem="-----BEGIN CERTIFICATE-----\n...",
        )
        for index, name in enumerate(names)
    )


def found(client, query: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.subject_cn for c in client.get(LIST, {"q": query}).context["page"].object_list}


def test_words_find_whole_words_in_any_order_and_parts_of_words_when_few(alice_client, settings):
    settings.TRUSTVIEW_PAGE_SIZE = 3

    def search(text: str) -> set[str]:
        return {c.subject_cn for c in Certificate.objects.search(text)}

    add("api.aarhus.dk", "Webshop Aarhus", "Aarhus webshop-2", "mywebshop aarhusian", "Lønsystem Odense")
    # Fewer than a page of whole-word matches: parts of words are searched too (both databases).
    assert search("lønsys") == {"Lønsystem Odense"} == found(alice_client, "lønsys")
    assert "mywebshop aarhusian" in search("webshop aarhus")
    whole = {"api.aarhus.dk", "Webshop Aarhus", "Aarhus webshop-2"}
    if connection.vendor == "postgresql":
        # A page of whole words ("aarhus" in host and hyphenated names too): "aarhusian", which has the
        # word only as a part, waits for a search that finds fewer.
        assert search("aarhus") == whole == found(alice_client, "aarhus")
        assert search("aarhus webshop") == {"Webshop Aarhus", "Aarhus webshop-2"}  # either order
    else:  # SQLite: parts of the name, as typed
        assert search("aarhus") == whole | {"mywebshop aarhusian"}
        assert search("aarhus webshop") == {"Aarhus webshop-2"}


def test_a_word_in_many_organisations_names_finds_their_certificates_and_the_names_that_have_it(
    settings, client, django_user_model
):
    settings.TRUSTVIEW_PAGE_SIZE = 3
    named = Organization.objects.bulk_create(
        Organization(cvr=f"{30000000 + index}", name=f"Kolding Rådgivning {index}")
        for index in range(ORGANISATION_MATCH_LIMIT + 5)
    )
    other = Organization.objects.create(cvr="39999999", name="Vejle Kommune")
    add("Lønsystem", "Kolding havn", "Intranet", "Webshop")
    Certificate.objects.filter(subject_cn="Lønsystem").update(organization=named[-1])
    Certificate.objects.filter(subject_cn__in=["Kolding havn", "Intranet"]).update(organization=other)
    # More organisations than the search hands over as ids: the database looks them up in the same
    # statement, ORed with the common names' words.
    found = set(Certificate.objects.search("kolding").values_list("subject_cn", flat=True))
    assert found == {"Lønsystem", "Kolding havn"}
    assert Certificate.objects.search("kolding").count() == 2
    # A viewer limited to another organisation finds only its certificate with the word.
    viewer = django_user_model.objects.create_user("vejle", password="a-long-password-1")
    viewer.user_permissions.add(Permission.objects.get(codename="view_certificate"))
    limit_to_organisations(viewer, [other])
    client.force_login(viewer)
    page = client.get(LIST, {"q": "kolding"})
    assert {c.subject_cn for c in page.context["page"].object_list} == {"Kolding havn"}
    # A word in no organisation's name: the common names alone.
    assert set(Certificate.objects.search("havn").values_list("subject_cn", flat=True)) == {"Kolding havn"}


@pytest.mark.parametrize(
    "typed",
    [
        "%",
        "_",
        "%_%",
        "' OR 1=1 --",
        "kolding & | ! :* <->",
        "a" * 500,
        "nul\x00byte",
        "日本語 Ærø",
        "()[]{}\\",
    ],
)
def test_hostile_search_text_gets_a_page_not_an_error(alice_client, typed):
    Organization.objects.bulk_create(
        Organization(cvr=f"{40000000 + index}", name=f"100% Kolding_{index}") for index in range(3)
    )
    add("Kolding havn", "100% sikker", "Intranet")
    response = alice_client.get(LIST, {"q": typed})
    assert response.status_code == 200
    shown = {c.subject_cn for c in response.context["page"].object_list}
    if typed == "%":  # a literal percent sign, not a wildcard
        assert shown == {"100% sikker"}
    if typed in ("%_%", "_"):  # nor is an underscore: no name has these
        assert shown == set()
