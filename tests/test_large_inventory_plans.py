"""The dashboard's and the word search's queries keep to their indexes on PostgreSQL: each query the
cards, the chart and "needs attention" run can be answered without reading the certificate table (or
the tally) whole, and words are looked up in the full-text index.

PostgreSQL only (`make test` runs these in its PostgreSQL run); the figures are `make bench`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from certificates.dashboard import attention, counts, expiry_chart
from certificates.models import Certificate, ExpiryTally

from .test_performance_indexes import _forced_index_plan, make_large_inventory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans (make test runs them)"),
]


def plans(run: Callable[[], Any]) -> list[tuple[str, str]]:
    """The SQL of every SELECT `run` makes, each with its plan when sequential scans are made
    prohibitively dear: a sequential scan left in such a plan is one no index can replace."""
    captured: list[tuple[str, Any]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        run()
    found = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # ends with the test's transaction
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
    assert len(queries) >= 10
    for sql, plan in queries:
        assert "Seq Scan on certificates_certificate " not in plan, (sql, plan)
        assert "Seq Scan on certificates_expirytally" not in plan, (sql, plan)
    used = "\n".join(plan for _, plan in queries)
    # The tally by scope; the edges of the windows, the not yet valid, and the kinds of urgency.
    for index in ("tally_scope_day_idx", "cert_state_expiry_idx", "cert_not_before_idx"):
        assert index in used, index


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
