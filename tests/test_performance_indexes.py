"""The indexes a large inventory depends on stay usable: a later change to a query or an index that
makes PostgreSQL read the whole table fails here, not at a customer with a million certificates.

PostgreSQL only (`make test` runs these in its PostgreSQL run); the figures themselves are `make bench`'s
(docs/performance.md), never timed here.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.utils import timezone

from certificates.choices import LifecycleState
from certificates.models import DEFAULT_RENEW_BEFORE, Certificate, Organization, renewal_due_at

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans (make test runs them)"),
]


def make_large_inventory(count: int) -> None:
    """`count` certificates shaped like a real inventory: expiries over three years, most expired ones
    superseded, a private key for a third, so only a few per cent are renewable and about 1% due."""
    now = timezone.now()
    organization = Organization.objects.create(cvr="11223344", name="Eksempel A/S")
    rows = []
    for i in range(count):
        not_after = now + dt.timedelta(days=(i * 37) % 1095 - 365, hours=1)
        not_before = not_after - dt.timedelta(days=3 * 365)
        expired = not_after <= now
        state = LifecycleState.SUPERSEDED if expired and i % 10 < 7 else LifecycleState.ACTIVE
        rows.append(
            Certificate(
                organization=organization,
                subject_cn=f"Lønsystem {i:05d} Eksempel",
                subject_dn=f"CN=Lønsystem {i:05d}",
                issuer_cn="Test CA",
                issuer_dn="CN=Test CA",
                serial_number=f"{i:08X}",
                fingerprint_sha256=hashlib.sha256(str(i).encode()).hexdigest().upper(),
                not_before=not_before,
                not_after=not_after,
                key_algorithm="RSA",
                signature_algorithm="RSASSA-PSS with SHA-256",
                cvr="11223344",
                state=state,
                pem="-----BEGIN CERTIFICATE-----\n...",
                private_key_encrypted="token" if i % 3 == 0 else "",
                renew_at=renewal_due_at(not_before, not_after, DEFAULT_RENEW_BEFORE),
            )
        )
    Certificate.objects.bulk_create(rows, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_certificate")


def test_what_is_due_reads_the_partial_index_of_renewable_certificates():
    make_large_inventory(5000)
    due = Certificate.objects.due_for_renewal()
    assert 0 < due.count() < 200  # a few due among 5,000: the shape in which a plan matters
    plan = due.explain()
    assert "cert_renewable_due_idx" in plan, plan


def test_the_search_for_part_of_a_common_name_can_use_the_trigram_index():
    make_large_inventory(2000)
    # Whether the planner prefers the index at 2,000 rows depends on statistics (it may walk the not_after
    # index for the ordering instead); that it *can* use it (the index exists and matches the search's
    # UPPER(...) LIKE) is what a change could lose. SET LOCAL ends with the test's transaction.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = Certificate.objects.search("00123 eksem").explain()
    assert "cert_cn_trgm_idx" in plan, plan


def test_the_imports_issuer_look_up_reads_only_the_ca_certificates():
    make_large_inventory(2000)
    # The query of certificates.trust._inventory_issuers, which runs for every imported certificate.
    plan = Certificate.objects.filter(is_ca=True, subject_dn__in=["CN=Test CA"]).explain()
    assert "cert_ca_idx" in plan, plan


def _forced_index_plan(queryset) -> str:  # type: ignore[no-untyped-def]
    """The plan with sequential scans made prohibitively dear: whether the query *can* use an index,
    independent of the small table's statistics. SET LOCAL ends with the test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Nor walk another index for the ordering, filtering every row (as a plain index scan may):
        # bitmap scans, which only the searched column's index can feed.
        cursor.execute("SET LOCAL enable_indexscan = off")
    return queryset.explain()


@pytest.mark.parametrize(
    ("typed", "index"),
    [
        ("11223344", "certificates_certificate_cvr_"),
        ("00000123-0000-4000-8000-000000000000", "certificates_certificate_oces_uuid_"),
        ("0000007B", "certificates_certificate_serial_number_"),
        ("0000007B", "certificates_certificate_fingerprint_sha256_"),
        ("Lønsystem 00123", "cert_cn_trgm_idx"),
    ],
)
def test_each_kind_of_search_reads_its_index(typed, index):
    make_large_inventory(500)
    plan = _forced_index_plan(Certificate.objects.search(typed).order_by().values("pk"))
    assert index in plan and "Seq Scan" not in plan, plan


def test_the_organisation_name_search_can_use_the_trigram_index():
    for i in range(300):
        Organization.objects.create(cvr=f"{20000000 + i}", name=f"Herning Bank {i}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_organization")
    plan = _forced_index_plan(Organization.objects.filter(name__icontains="bank 12"))
    assert "org_name_trgm_idx" in plan, plan


def test_a_deep_list_page_starts_in_the_expiry_index():
    from certificates.paging import after

    make_large_inventory(3000)
    last = Certificate.objects.order_by("not_after", "id")[2000]
    deep = (
        Certificate.objects.with_status()
        .with_renewal_state()
        .for_listing()
        .order_by("not_after", "id")
        .filter(after(("not_after", "id"), [last.not_after, last.pk]))[:51]
    )
    plan = deep.explain()
    assert "certificates_certificate_not_after_" in plan and "Index Cond: (not_after >=" in plan, plan


def test_the_portals_connections_do_not_compile_queries_just_in_time():
    # JIT compiling cost a second per dashboard count at 100,000 certificates (docs/performance.md).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_the_revocation_check_takes_its_slice_from_the_partial_index():
    from certificates.revocation import due_queries

    make_large_inventory(2000)
    now = timezone.now()
    # Most were checked within the day; a few long ago, and a few never.
    Certificate.objects.update(chain_verified=True, revocation_checked_at=now - dt.timedelta(hours=3))
    Certificate.objects.filter(pk__in=Certificate.objects.order_by("pk").values("pk")[:40]).update(
        revocation_checked_at=now - dt.timedelta(days=2)
    )
    Certificate.objects.filter(pk__in=Certificate.objects.order_by("-pk").values("pk")[:10]).update(
        revocation_checked_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_certificate")
    never, oldest = due_queries(now)
    for query in (never[:1000], oldest[:1000]):
        plan = query.explain()
        assert "cert_revocation_check_idx" in plan, plan
