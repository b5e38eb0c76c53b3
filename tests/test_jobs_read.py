"""The scheduled jobs read what they need: the sweep the ids of what is due, the alerts and the monthly
status neither PEM nor chain; the monthly status counts per month and organisation in the database."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from certificates import alerts
from certificates.alerts import send_expiry_alerts, send_monthly_status
from certificates.models import Certificate, Organization, renewal_due_at
from certificates.renewal import sweep

pytestmark = pytest.mark.django_db


def make_due(count: int, days_left: int) -> None:
    """`count` renewable certificates (a key, auto-renew) expiring in `days_left` days."""
    now = timezone.now()
    not_after = now + dt.timedelta(days=days_left)
    not_before = not_after - dt.timedelta(days=3 * 365)
    organization, _ = Organization.objects.get_or_create(cvr="11223344", name="Eksempel A/S")
    Certificate.objects.bulk_create(
        Certificate(
            organization=organization,
            subject_cn=f"due-{i}",
            subject_dn=f"CN=due-{i}",
            issuer_cn="Test CA",
            issuer_dn="CN=Test CA",
            serial_number=f"{i:08X}",
            fingerprint_sha256=uuid.uuid4().hex.upper() * 2,
            not_before=not_before,
            not_after=not_after + dt.timedelta(minutes=i),
            key_algorithm="RSA",
            signature_algorithm="RSASSA-PSS with SHA-256",
            pem="-----BEGIN CERTIFICATE-----\n...",
            private_key_encrypted="token",
            renew_at=renewal_due_at(not_before, not_after, dt.timedelta(days=30)),
        )
        for i in range(count)
    )


def certificate_columns(queries: CaptureQueriesContext) -> list[str]:
    """The select lists of the queries that read certificates."""
    heads = [q["sql"].split(" FROM ")[0] for q in queries.captured_queries]
    return [head for head in heads if '"certificates_certificate".' in head]


def test_the_sweep_reads_only_the_ids_of_what_is_due():
    make_due(3, days_left=10)
    with CaptureQueriesContext(connection) as queries:
        sweep()
    heads = certificate_columns(queries)
    assert heads and all('"pem"' not in head and '"chain_pem"' not in head for head in heads)
    due_query = next(q["sql"] for q in queries.captured_queries if '"renew_at" <=' in q["sql"])
    assert due_query.split(" FROM ")[0] in (
        'SELECT "certificates_certificate"."id"',
        'SELECT "certificates_certificate"."id" AS "pk"',
    ), due_query


def test_alerts_and_the_monthly_status_leave_pem_and_chain_in_the_database(settings, monkeypatch):
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS = [30, 14]
    monkeypatch.setattr(alerts, "MONTHLY_LIST_LIMIT", 2)
    make_due(6, days_left=10)
    with CaptureQueriesContext(connection) as queries:
        assert send_expiry_alerts() == 6
        assert send_monthly_status()
    heads = certificate_columns(queries)
    assert heads and all('"pem"' not in head and '"chain_pem"' not in head for head in heads)
    monthly = mail.outbox[-1].body
    month = timezone.localtime(timezone.now() + dt.timedelta(days=10)).strftime("%Y-%m")
    months = {timezone.localtime(c.not_after).strftime("%Y-%m") for c in Certificate.objects.all()}
    if months == {month}:  # all six in one month (unless the run straddles a month's end)
        assert f"{month}: 6 certificates" in monthly
    assert "… and 4 more" in monthly
    assert "Eksempel A/S (CVR 11223344): 6 certificates" in monthly  # the organisations, by count
    assert "/certificates/?q=11223344&sort=expiry" in monthly
