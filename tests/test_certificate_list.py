"""The certificate list: search, filters, sorting, paging, and a constant number of queries."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates.choices import LifecycleState
from certificates.models import Certificate, Organization
from certificates.services import import_certificate_file

from .conftest import ALL_FIXTURES, SKAT_CVR, SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db
LIST = reverse("certificates:list")


def make_inventory(count: int) -> None:
    """`count` rows shaped like parsed certificates, spread over expiry, state and environment."""
    now = timezone.now()
    organization = Organization.objects.create(cvr="11223344", name="Eksempel A/S")
    Certificate.objects.bulk_create(
        Certificate(
            organization=organization,
            subject_cn=f"system-{i:04d}",
            subject_dn=f"CN=system-{i:04d}",
            issuer_cn="Test CA",
            issuer_dn="CN=Test CA",
            serial_number=f"{i:08X}",
            fingerprint_sha256=uuid.uuid4().hex.upper() * 2,
            not_before=now - dt.timedelta(days=400),
            not_after=now + dt.timedelta(days=(i * 7) % 400 - 30, hours=1),
            key_algorithm="RSA",
            key_size=3072,
            signature_algorithm="RSASSA-PSS with SHA-256",
            cvr="11223344",
            environment=["test", "production"][i % 2],
            state=[LifecycleState.ACTIVE, LifecycleState.SUPERSEDED, LifecycleState.BLOCKED][i % 3],
            pem="-----BEGIN CERTIFICATE-----\n...",
            private_key_encrypted="token" if i % 5 == 0 else "",
        )
        for i in range(count)
    )


def queries_for(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_runs_the_same_number_of_queries_for_10_and_500_certificates(alice_client):
    filtered = LIST + "?q=system&environment=test&expires_within=300&sort=-expiry"
    make_inventory(10)
    assert alice_client.get(filtered).context["page"].object_list  # a page with rows, not an empty one
    small, small_filtered = queries_for(alice_client, LIST), queries_for(alice_client, filtered)
    Certificate.objects.all().delete()
    Organization.objects.all().delete()
    make_inventory(500)
    assert queries_for(alice_client, LIST) == small
    assert queries_for(alice_client, filtered) == small_filtered
    assert queries_for(alice_client, LIST + "?page=3") == small


def test_list_needs_login(client):
    assert client.get(LIST).status_code == 302


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.subject_cn for c in response.context["page"].object_list]


@pytest.fixture
def real_inventory(db):  # type: ignore[no-untyped-def]
    for name in ALL_FIXTURES:
        import_certificate_file(oces3(name), actor="test")


SKAT = "Skatteministeriet - B2B gateway TSE TEST"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("B2B gateway", [SKAT, SKAT]),
        (SKAT_CVR, [SKAT, SKAT]),
        ("4C:5F:96:B2:FF:8B", [SKAT]),  # serial as OpenSSL prints it, the start is enough
        ("4c5f96b2ff8bfde1e126d13a348d4270481d1545", [SKAT]),
        ("udstedende", ["Den Danske Stat OCES udstedende-CA 1"]),
        ("nothing like this", []),
    ],
)
def test_search_by_name_cvr_serial_and_fingerprint(alice_client, real_inventory, query, expected):
    assert names(alice_client.get(LIST, {"q": query})) == expected


def test_search_by_fingerprint_start(alice_client, real_inventory):
    certificate = Certificate.objects.get(not_after__year=2029)
    response = alice_client.get(LIST, {"q": certificate.fingerprint_display[:23]})
    assert names(response) == [SKAT]


def test_filter_by_status_and_environment(alice_client, real_inventory):
    assert names(alice_client.get(LIST, {"status": "superseded"})) == []  # the 2023 one shows as expired
    assert names(alice_client.get(LIST, {"status": "expired"})) == [SKAT]
    assert len(names(alice_client.get(LIST, {"status": "valid", "environment": "test"}))) == 3
    assert names(alice_client.get(LIST, {"environment": "production"})) == []


def test_expires_within_counts_days_from_now(alice_client):
    make_inventory(60)
    response = alice_client.get(LIST, {"expires_within": "30"})
    now = timezone.now()
    expected = [
        c.subject_cn for c in Certificate.objects.all() if now < c.not_after <= now + dt.timedelta(days=30)
    ]
    assert expected  # the inventory has some, and some expired ones that must not show
    assert Certificate.objects.filter(not_after__lte=now).exists()
    assert sorted(names(response)) == sorted(expected)


def test_sorted_by_expiry_both_ways_and_paged(alice_client, settings):
    settings.TRUSTVIEW_PAGE_SIZE = 7
    make_inventory(20)
    first = alice_client.get(LIST, {"sort": "expiry"}).context["page"]
    dates = [c.not_after for c in first.object_list]
    assert dates == sorted(dates) and len(dates) == 7
    latest = alice_client.get(LIST, {"sort": "-expiry"}).context["page"].object_list[0]
    assert latest.not_after == max(Certificate.objects.values_list("not_after", flat=True))
    third = alice_client.get(LIST, {"sort": "expiry", "page": "3"})
    assert len(third.context["page"].object_list) == 6
    assert "Page 3 of 3" in third.content.decode()


def test_bad_filter_value_is_explained_not_a_crash(alice_client, real_inventory):
    response = alice_client.get(LIST, {"expires_within": "soon"})
    assert response.status_code == 200
    assert "Expires within (days): Enter a whole number." in response.content.decode()


def test_status_badges_and_monitor_only_shown(alice_client, real_inventory):
    page = alice_client.get(LIST).content.decode()
    # Each badge carries its situation's sentence as a tip (certificates.situation).
    assert 'class="badge badge-red" title="Expired on' in page and ">Expired</span>" in page
    assert 'class="badge badge-green" title="Valid until' in page and ">Valid</span>" in page
    assert "Monitor only" in page


def test_detail_of_missing_certificate_is_a_plain_404(alice_client):
    response = alice_client.get(reverse("certificates:detail", args=[999]))
    assert response.status_code == 404


def test_subject_with_markup_shows_as_text(alice_client):
    from . import pki

    ca = pki.make_ca()
    leaf = pki.make_leaf(ca, pki.name("<script>alert(1)</script>"))
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    for url in [LIST, outcome.certificate.get_absolute_url()]:
        page = alice_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_fixture_detail_shows_days_left(alice_client):
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    days = (outcome.certificate.not_after - timezone.now()).days
    assert f"{days} days" in alice_client.get(outcome.certificate.get_absolute_url()).content.decode()


def test_status_filter_agrees_with_the_status_shown():
    """of_status (used to filter) and with_status (shown as the badge) name the same certificates."""
    make_inventory(120)
    from certificates.choices import Status

    shown = {c.pk: c.status for c in Certificate.objects.with_status()}
    assert set(shown.values()) >= {"valid", "expiring", "expired", "superseded", "blocked"}
    for status in Status:
        assert set(Certificate.objects.of_status(status).values_list("pk", flat=True)) == {
            pk for pk, value in shown.items() if value == status
        }
