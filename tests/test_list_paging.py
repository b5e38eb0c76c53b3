"""The certificate list's keyset pages: next and previous walk every certificate once, in order, also
where many share a sort key; a deep page costs the queries the first does; counts are bounded."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from certificates import paging
from certificates.models import Certificate, Organization

pytestmark = pytest.mark.django_db
LIST = reverse("certificates:list")


def make_ties(count: int) -> None:
    """`count` certificates in groups of five sharing the expiry, and in groups of four the name, so page
    boundaries fall inside runs of equal sort keys."""
    base = timezone.now() + dt.timedelta(days=10)
    organization = Organization.objects.create(cvr="11223344", name="Eksempel A/S")
    Certificate.objects.bulk_create(
        Certificate(
            organization=organization,
            subject_cn=f"system-{i // 4:03d}",
            subject_dn="CN=system",
            issuer_cn="Test CA",
            issuer_dn="CN=Test CA",
            serial_number=f"{i:08X}",
            fingerprint_sha256=uuid.uuid4().hex.upper() * 2,
            not_before=base - dt.timedelta(days=400),
            not_after=base + dt.timedelta(days=(i * 3 % count) // 5),
            key_algorithm="RSA",
            signature_algorithm="RSASSA-PSS with SHA-256",
            cvr="11223344",
            pem="-----BEGIN CERTIFICATE-----\n...",
        )
        for i in range(count)
    )


def link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', page)
    return html.unescape(found.group(1)) if found else None


def walk(client, start: str, rel: str) -> tuple[list[list[int]], str]:  # type: ignore[no-untyped-def]
    """Follow the `rel` links from `start`: the ids of each page seen, and the last page's URL."""
    pages, url, last = [], start, start
    while url is not None:
        response = client.get(url if url.startswith("/") else LIST + url)
        assert response.status_code == 200
        pages.append([c.pk for c in response.context["page"].object_list])
        last, url = url, link(response.content.decode(), rel)
        assert len(pages) < 20
    return pages, last


@pytest.mark.parametrize("sort", ["expiry", "-expiry"])  # by name: see the next test
def test_next_and_previous_visit_every_certificate_once_in_order_across_equal_keys(
    alice_client, settings, sort
):
    settings.TRUSTVIEW_PAGE_SIZE = 5
    make_ties(17)
    ordering = {"expiry": ("not_after", "id"), "-expiry": ("-not_after", "-id"), "name": ("subject_cn", "id")}
    expected = list(Certificate.objects.order_by(*ordering[sort]).values_list("pk", flat=True))

    forward, last = walk(alice_client, f"{LIST}?sort={sort}", "next")
    assert [len(p) for p in forward] == [5, 5, 5, 2]
    assert [pk for p in forward for pk in p] == expected

    last_page = alice_client.get(LIST + last).content.decode()
    assert "Page 4 of 4" in last_page
    backward, _ = walk(alice_client, link(last_page, "prev"), "prev")  # type: ignore[arg-type]
    assert backward == forward[-2::-1]


def test_page_links_keep_the_filters_and_the_page_number(alice_client, settings):
    settings.TRUSTVIEW_PAGE_SIZE = 5
    make_ties(20)
    first = alice_client.get(LIST, {"q": "system", "sort": "name"}).content.decode()
    second_url = link(first, "next")
    assert second_url is not None and "q=system" in second_url and "sort=name" in second_url
    second_response = alice_client.get(LIST + second_url)
    second = second_response.content.decode()
    assert "Page 2 of 4" in second
    by_name = list(Certificate.objects.order_by("subject_cn", "id").values_list("pk", flat=True))
    assert [c.pk for c in second_response.context["page"].object_list] == by_name[
        5:10
    ]  # inside a run of names
    back = link(second, "prev")
    assert back is not None and "before=" not in back and "page=" not in back  # back to page 1 itself


def test_an_edited_cursor_is_ignored_not_an_error(alice_client, settings):
    settings.TRUSTVIEW_PAGE_SIZE = 5
    make_ties(12)

    def ids(**params: str) -> list[int]:
        response = alice_client.get(LIST, params)
        assert response.status_code == 200
        return [c.pk for c in response.context["page"].object_list]

    first, second = ids(), ids(page="2")
    assert ids(after="not-a-cursor") == first
    assert ids(before="WyIyMDI2LTAxLTAxIiwgIngiXQ") == first  # ["2026-01-01", "x"]: not an id
    assert ids(after="WyJ4Il0", page="2") == second  # ["x"]: the page number alone, as an old link has it


def test_a_deep_page_runs_the_queries_of_the_first(alice_client, settings, django_assert_max_num_queries):
    settings.TRUSTVIEW_PAGE_SIZE = 4
    make_ties(40)
    with CaptureQueriesContext(connection) as first_page:
        page = alice_client.get(LIST).content.decode()
    first_page_queries = len(first_page)  # now: each request empties Django's query log
    url: str | None = link(page, "next")
    for _ in range(5):
        assert url is not None
        page = alice_client.get(LIST + url).content.decode()
        url = link(page, "next")
    assert "Page 6 of 10" in page
    with django_assert_max_num_queries(first_page_queries):
        alice_client.get(LIST + url)  # type: ignore[operator]


def test_counts_beyond_the_limit_say_more_than_or_about(alice_client, settings, monkeypatch):
    settings.TRUSTVIEW_PAGE_SIZE = 10
    monkeypatch.setattr(paging, "COUNT_LIMIT", 20)
    make_ties(45)
    filtered = alice_client.get(LIST, {"status": "expiring"}).content.decode()
    assert "More than 20 certificates" in filtered
    assert "Page 1</li>" in filtered and "Page 1 of" not in filtered
    if connection.vendor == "postgresql":  # the whole inventory: the table's statistics, once analysed
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE certificates_certificate")
        assert "About 45 certificates" in alice_client.get(LIST).content.decode()
    else:
        assert "More than 20 certificates" in alice_client.get(LIST).content.decode()
    assert "<p>4 certificates · filtered" in alice_client.get(LIST, {"q": "system-001"}).content.decode()


def test_a_search_counts_up_to_its_own_limit_and_a_filter_up_to_the_lists(
    alice_client, settings, monkeypatch
):
    settings.TRUSTVIEW_PAGE_SIZE = 10
    monkeypatch.setattr(paging, "SEARCH_COUNT_LIMIT", 20)
    make_ties(45)
    searched = alice_client.get(LIST, {"q": "system"}).content.decode()
    assert "More than 20 certificates · filtered" in searched
    filtered = alice_client.get(LIST, {"status": "expiring"}).content.decode()
    assert "45 certificates · filtered" in filtered and "More than" not in filtered
