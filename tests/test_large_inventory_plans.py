"""The dashboard's and the word search's queries keep to their indexes on PostgreSQL: each query the
cards, the chart and "needs attention" run can be answered without reading the certificate table (or
the tally) whole, and words are looked up in the full-text index.

PostgreSQL only (`make test` runs these in its PostgreSQL run); the figures are `make bench`'s."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from certificates.choices import OrderState
from certificates.dashboard import attention, counts, counts_and_chart, expiry_chart
from certificates.models import Certificate, ExpiryTally, Order, Organization

from .test_performance_indexes import _forced_index_plan, make_large_inventory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans (make test runs them)"),
]


def plans(run: Callable[[], Any], bitmaps: bool = True) -> list[tuple[str, str]]:
    """The SQL of every SELECT `run` makes, each with its plan when sequential scans are made
    prohibitively dear: a sequential scan left in such a plan is one no index can replace. Without
    `bitmaps`, bitmap scans too: an index scan is then an index-only scan wherever the index holds every
    column the query reads."""
    captured: list[tuple[str, Any]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        run()
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # ends with the test's transaction
        if not bitmaps:
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        for sql, params in captured:
            if sql.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN " + sql, params)
                found.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return found


def test_the_cards_chart_and_attention_read_the_certificates_and_the_tally_through_indexes():
    make_large_inventory(3000)
    ExpiryTally.settle()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_expirytally")
    now = timezone.now()
    everything = Certificate.objects.all()

    def dashboard() -> None:
        counts(now, everything)
        expiry_chart(now, everything)
        attention(now, everything)

    queries = plans(dashboard)
    assert len(queries) >= 3  # the cards, the chart, and at least one of "needs attention"
    for sql, plan in queries:
        assert "Seq Scan on certificates_certificate " not in plan, (sql, plan)
        assert "Seq Scan on certificates_expirytally" not in plan, (sql, plan)
    used = "\n".join(plan for _, plan in queries)
    # The tally by scope; the edges of the windows, the not yet valid, and the kinds of urgency.
    for index in ("tally_scope_day_idx", "cert_state_expiry_idx", "cert_not_before_idx"):
        assert index in used, index


def test_the_edges_of_the_windows_are_counted_in_the_expiry_index_alone():
    """The cards and the chart are one statement; the parts of days at the windows' edges (about a
    day of certificates each, 4,000-5,000 at a million) are counted in `cert_state_expiry_idx` alone,
    never read from the table; only the few certificates not yet valid are read from it, and those with
    an open or failing renewal order, found from the orders."""
    make_large_inventory(3000)
    Organization.objects.create(cvr="55667788", name="Anden A/S")
    ExpiryTally.settle()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_expirytally")
        cursor.execute("ANALYZE certificates_certificate")
    now = timezone.now()
    for organisations in (None, Organization.objects.filter(cvr="11223344")):  # everyone; a limit
        certificates = Certificate.objects.all()
        if organisations is not None:
            certificates = certificates.filter(organization__in=organisations)
        run = functools.partial(counts_and_chart, now, certificates, organisations)
        assert_edges_in_the_index(plans(run, bitmaps=False))


def assert_edges_in_the_index(queries: list[tuple[str, str]]) -> None:
    ((sql, plan),) = queries[:1]
    assert "certificates_expirytally" in sql, sql
    scans = [line.strip(" ->") for line in plan.splitlines() if " on certificates_certificate " in line]
    edges = [scan for scan in scans if scan.startswith("Index Only Scan using cert_state_expiry_idx")]
    not_started = [scan for scan in scans if scan.startswith("Index Scan using cert_not_before_idx")]
    # A part of a day at now, at the expiring and critical bounds and at each month's start, each once
    # (where windows meet, they share it).
    assert len(edges) >= 12, plan
    ranges = [
        line for line in plan.splitlines() if "Index Cond: ((state = " in line and "not_after <" in line
    ]
    assert len(set(ranges)) == len(ranges), plan
    assert len(not_started) == 3, plan  # valid, expiring and critical
    # Renewing and renewal failing: one look-up by id per order.
    others = [scan for scan in scans if scan not in edges and scan not in not_started]
    assert others and all("Scan using certificates_certificate_pkey" in scan for scan in others), plan
    assert "Seq Scan on certificates_expirytally" not in plan, plan


def test_the_failing_renewals_are_read_from_the_recent_failures_in_their_index():
    """The failing renewals (the dashboard's card and the most urgent kind of "needs attention") are
    found from the open orders and the failures of the last days, a range of `order_renewal_outcome_idx`,
    not from every failure ever recorded."""
    make_large_inventory(1000)
    now = timezone.now()
    orders = []
    for index, pk in enumerate(Certificate.objects.order_by("pk").values_list("pk", flat=True)):
        recent = index % 20 == 0
        completed = now - dt.timedelta(days=1 if recent else 200 + index % 300)
        orders.append(
            Order(
                certificate_id=pk, state=OrderState.FAILED, completed_at=completed, requested_by_label="bench"
            )
        )
    Order.objects.bulk_create(orders)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_order")
    for run in (
        lambda: counts(now, Certificate.objects.all()),
        lambda: attention(now, Certificate.objects.all()),
    ):
        (_sql, plan), *_ = plans(run)
        assert "order_renewal_outcome_idx" in plan, plan


def test_needs_attention_as_the_list_filters_it_is_an_or_of_index_ranges():
    make_large_inventory(3000)
    now = timezone.now()
    ((_sql, plan),) = [
        q for q in plans(lambda: Certificate.objects.needs_attention(now).count()) if "COUNT" in q[0]
    ]
    assert "Seq Scan on certificates_certificate " not in plan, plan
    assert "BitmapOr" in plan and "cert_active_due_idx" in plan, plan


def test_words_are_looked_up_in_the_full_text_index_of_the_common_names():
    make_large_inventory(3000)
    # As in test_performance_indexes: whether the query *can* use the index, whatever the statistics.
    plan = _forced_index_plan(Certificate.objects.search("Lønsystem 00123 Eksempel"))
    assert "cert_cn_words_idx" in plan, plan


def _page_plan(typed: str) -> str:
    """The plan of the list's first page of a search for `typed` (as paging.keyset_page reads it), with
    sequential scans made prohibitively dear so the choice is between the indexes."""
    page = Certificate.objects.search(typed).with_status().with_situation().for_listing()[:51]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    return page.explain()


def test_the_planner_works_out_the_words_of_as_few_names_as_it_can():
    make_large_inventory(5000)
    # Working out a name's words (about 5 us) is priced above reading several pages from the disk, so a
    # page of search results comes from the words index and a sort of the matches, unless walking the
    # expiry index finds a page in fewer names. Priced as the built-in expression (a hundred simple
    # operations), walking looked cheaper: at 1,000,000 certificates a pair of words with 3,855 matches
    # walked 26,000 names for 200 ms, against 40 ms from the index (migration 0021; make bench's figure).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT procost * current_setting('cpu_operator_cost')::float, "
            "current_setting('random_page_cost')::float FROM pg_proc WHERE proname = 'certificate_cn_words'"
        )
        words, page_read = cursor.fetchone()
    assert words > 5 * page_read, (words, page_read)
    # Rare words: from the index. A word every name has: the first 51 names in expiry order, walking.
    rare = Certificate.objects.filter(pk__in=list(Certificate.objects.values_list("pk", flat=True)[::100]))
    for certificate in rare:
        certificate.subject_cn = f"Kolding Lønsystem {certificate.pk}"
        certificate.save(update_fields=["subject_cn"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE certificates_certificate")
    assert "cert_cn_words_idx" in _page_plan("Kolding Lønsystem")
    plan = _page_plan("Eksempel")
    assert "cert_cn_words_idx" not in plan, plan
    assert "Index Scan using certificates_certificate_not_after_" in plan, plan
