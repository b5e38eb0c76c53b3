"""The certificate list as CSV, streamed: the columns an administrator needs to reconcile the inventory
with MitID Erhverv's own certificate list. Used by the list page's "Export CSV" and by the API.

The large columns (PEM, chain, key) stay in the database and rows are read in chunks, so memory stays
flat whatever the inventory size. Headers and values are stable codes, not translated text, so a script
can read them.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from .models import CertificateQuerySet

HEADER = [
    "common_name",
    "cvr",
    "organisation",
    "certificate_uuid",
    "environment",
    "type",
    "serial_number",
    "valid_from",
    "valid_to",
    "state",
    "renewal_state",
    "situation",
]
_FIELDS = [
    "subject_cn",
    "cvr",
    "oces_uuid",
    "environment",
    "oces_type",
    "serial_number",
    "not_before",
    "not_after",
]
CHUNK_SIZE = 2000
# A cell that a spreadsheet would read as a formula (CSV injection) gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# A spreadsheet whose list separator is ';' (Excel in Danish) splits a line at every ';' and a quoted
# field's newline as if unquoted, so what follows one of them starts a cell there: it gets an apostrophe
# too when it would start a formula (after spaces or quotes, which such a split leaves in front).
_FORMULA_AFTER_SPLIT = re.compile(r"([;\r\n])(?=[\s\"]*[=+\-@])")


def safe_cell(value: Any) -> str:
    """A value as CSV cell text that a spreadsheet never evaluates, whether it splits on ',' or ';'."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    text = _FORMULA_AFTER_SPLIT.sub(r"\1'", str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def renewal_state(renewing: bool, failing: bool) -> str:
    """failing, in_progress or empty: the list's "Renewal" filter, one word."""
    return "failing" if failing else ("in_progress" if renewing else "")


def rows(certificates: CertificateQuerySet) -> Iterator[list[str]]:
    """One row per certificate, in the queryset's order. The last column is the key of the certificate's
    situation (Certificate.situation: what its page and e-mails say), read in the same query
    (with_situation), so no page and no export disagree about a certificate."""
    now = timezone.now()
    listed = certificates.with_status(now).with_situation(now).for_listing().iterator(chunk_size=CHUNK_SIZE)
    for certificate in listed:
        fields = [getattr(certificate, name) for name in _FIELDS]
        organisation = certificate.organization.name if certificate.organization else ""
        yield (
            [safe_cell(v) for v in fields[:2]]
            + [safe_cell(organisation)]
            + [safe_cell(v) for v in fields[2:]]
            + [
                certificate.status,  # type: ignore[attr-defined]
                renewal_state(certificate.renewing, certificate.renewal_failing),  # type: ignore[attr-defined]
                certificate.situation(now).key.value,
            ]
        )


class _Line:
    """A file-like object whose write returns the line, so csv.writer produces strings to stream."""

    def write(self, text: str) -> str:
        return text


def lines(certificates: CertificateQuerySet) -> Iterable[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(HEADER)
    for row in rows(certificates):
        yield writer.writerow(row)


def csv_response(certificates: CertificateQuerySet) -> StreamingHttpResponse:
    """The CSV download of `certificates` (already limited to the user and filtered), streamed."""
    response = StreamingHttpResponse(lines(certificates), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="certificates-{stamp}.csv"'
    return response
