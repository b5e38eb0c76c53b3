"""CSV export of the certificate list (issue 13, item 6): the list as filtered, from the list page and
the API, with the columns for reconciling with MitID Erhverv, streamed, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tokens import create_token
from certificates.export import HEADER
from certificates.models import Certificate, Organization
from certificates.services import import_certificate_file

from .conftest import ALL_FIXTURES, SKAT_CVR, SKAT_UUID, oces3, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory():  # type: ignore[no-untyped-def]
    for name in ALL_FIXTURES:
        import_certificate_file(oces3(name), actor="test")


def read(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_list_pages_export_has_the_columns_and_follows_the_filters(vera_client, inventory):
    page = vera_client.get(reverse("certificates:list"), {"status": "valid"}).content.decode()
    assert 'href="/certificates/export.csv?status=valid"' in page and "Export CSV" in page

    everything = read(vera_client.get(reverse("certificates:export")))
    assert list(everything[0]) == HEADER and len(everything) == 4
    valid = read(vera_client.get(reverse("certificates:export"), {"status": "valid", "q": SKAT_CVR}))
    (row,) = valid
    leaf = Certificate.objects.get(cvr=SKAT_CVR, not_after__year=2029)  # test-system-2026-renewed
    assert row == {
        "common_name": leaf.subject_cn,
        "cvr": SKAT_CVR,
        "organisation": leaf.organization.name,
        "certificate_uuid": SKAT_UUID,
        "environment": "test",
        "type": leaf.oces_type,
        "serial_number": leaf.serial_number,
        "valid_from": leaf.not_before.isoformat().replace("+00:00", "Z"),
        "valid_to": leaf.not_after.isoformat().replace("+00:00", "Z"),
        "state": "valid",
        "renewal_state": "",
        "situation": "valid",  # the key of what its page says (Certificate.situation)
    }


def test_the_api_exports_the_same_rows_and_organisation_limits_apply(inventory, django_user_model):
    user = user_with_role(django_user_model, "script", "Viewer")
    _row, token = create_token(user, "t")
    from django.test import Client

    api = Client(headers={"Authorization": f"Bearer {token}"})
    by_format = read(api.get("/api/v1/certificates/", {"format": "csv", "status": "expired"}))
    by_address = read(api.get("/api/v1/certificates/export.csv", {"status": "expired"}))
    assert by_format == by_address and [r["state"] for r in by_address] == ["expired"]

    from accounts.models import limit_to_organisations

    limit_to_organisations(user, [Organization.objects.create(cvr="99999999", name="Andre")])
    user = type(user).objects.get(pk=user.pk)
    _row, token = create_token(user, "limited")  # the first token stopped when its access changed
    api = Client(headers={"Authorization": f"Bearer {token}"})
    assert read(api.get("/api/v1/certificates/export.csv")) == []


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted(vera_client, inventory):
    Certificate.objects.filter(cvr=SKAT_CVR).update(subject_cn='=HYPERLINK("http://evil")')
    Organization.objects.filter(cvr=SKAT_CVR).update(name="@SUM(A1)")
    rows = [r for r in read(vera_client.get(reverse("certificates:export"))) if r["cvr"] == SKAT_CVR]
    assert rows and all(r["common_name"] == '\'=HYPERLINK("http://evil")' for r in rows)
    assert all(r["organisation"] == "'@SUM(A1)" for r in rows)


def test_the_export_streams_a_constant_number_of_queries_without_pem_or_key_columns(vera_client, inventory):
    def queries(**filters: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            rows = read(vera_client.get(reverse("certificates:export"), filters))
        return [q["sql"] for q in captured.captured_queries], rows

    one_sql, one = queries(status="valid", q=SKAT_CVR)
    all_sql, everything = queries()
    assert (len(one), len(everything)) == (1, 4)
    assert len(one_sql) == len(all_sql)
    export_sql = [sql for sql in all_sql if "not_after" in sql]
    # Only whether a key is held is asked of the database (a comparison): no PEM, chain or key is read.
    assert export_sql and all(
        '"pem"' not in sql and not re.search(r'"private_key_encrypted"\s*(,|FROM)', sql) for sql in export_sql
    )


def test_a_spreadsheet_that_splits_on_semicolons_finds_no_formula_either(vera_client, inventory):
    """Danish Excel opens a CSV file with ';' as its list separator: a common name such as
    "Firma;=cmd|' /C calc'!A0" must not become a cell that starts with '=' there."""
    Certificate.objects.filter(cvr=SKAT_CVR).update(subject_cn="Firma;=cmd|' /C calc'!A0")
    Organization.objects.filter(cvr=SKAT_CVR).update(name='Org\n@SUM(A1);"+1')
    response = vera_client.get(reverse("certificates:export"))
    text = b"".join(response.streaming_content).decode()
    for delimiter in (",", ";"):
        cells = [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]
        assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))], delimiter
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["common_name"] for r in rows if r["cvr"] == SKAT_CVR} == {"Firma;'=cmd|' /C calc'!A0"}
