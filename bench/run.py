"""Migrate, seed, and measure each figure as a ratio against a baseline timed beside it."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import reverse
from django.utils import timezone

from bench.pki import self_signed_ca, signed_leaf
from bench.seed import seed

Timer = Callable[[], object]

# "What is due", asked by hand: the same conditions as Certificate.objects.due_for_renewal (renewable,
# due, no open renewal, no failure within the retry interval unless the organisation has since been
# enabled after a "not enabled" refusal), so the ORM's query can be held against it.
DUE_SQL = """
SELECT c.id FROM certificates_certificate c
WHERE c.state = 'active' AND c.auto_renew AND c.private_key_encrypted <> ''
  AND c.renew_at <= %(now)s AND c.not_after > %(now)s
  AND NOT EXISTS (SELECT 1 FROM certificates_order o WHERE o.certificate_id = c.id AND o.kind = 'renew'
                  AND o.state IN ('pending', 'in_progress'))
  AND NOT EXISTS (SELECT 1 FROM certificates_order o
                  WHERE o.certificate_id = c.id AND o.kind = 'renew' AND o.state = 'failed'
                    AND o.completed_at > %(retry)s
                    AND NOT (o.last_error_code = 'renewal_not_enabled' AND EXISTS (
                      SELECT 1 FROM certificates_organization g
                      WHERE g.id = c.organization_id AND g.renewal_enabled)))
ORDER BY c.not_after, c.id
"""


def timed(fn: Timer) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(fn: Timer, baseline: Timer, rounds: int) -> dict[str, Any]:
    """`rounds` pairs (baseline, then fn), after one warm-up of each; the ratio of each pair, so that the
    load the other users of the machine put on it at that moment cancels out."""
    fn(), baseline()
    ratios, times, bases = [], [], []
    for _ in range(rounds):
        base = timed(baseline)
        took = timed(fn)
        ratios.append(took / base)
        times.append(took)
        bases.append(base)
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "median_ms": statistics.median(times) * 1000,  # for orientation only; the ratio is the figure
        "baseline_median_ms": statistics.median(bases) * 1000,
    }


def get(client: Client, url: str) -> Timer:
    def fetch() -> object:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return fetch


def dummy_pem() -> tuple[str, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """One self-signed EC certificate: the PEM stored on every seeded row (no crypto per row), and the
    CA that signs the import bundle."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = self_signed_ca(key, "trustview bench CA")
    return ca.public_bytes(serialization.Encoding.PEM).decode(), key, ca


def import_bundle(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, count: int, tag: str) -> bytes:
    """A PEM bundle of `count` leaves (one EC key for all of them, to be quick) and their CA."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    parts = [ca.public_bytes(serialization.Encoding.PEM)]
    for index in range(count):
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, f"bench import {tag} {index}"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench A/S"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
            ]
        )
        leaf = signed_leaf(ca, ca_key, leaf_key, subject, 365 + index % 700)
        parts.append(leaf.public_bytes(serialization.Encoding.PEM))
    return b"".join(parts)


def run(total: int, rounds: int, started: float) -> dict[str, Any]:
    setup_test_environment()  # e-mail to memory, and the test client's host allowed
    assert connection.vendor == "postgresql", "make bench measures PostgreSQL"
    call_command("migrate", verbosity=0, interactive=False)
    print(f"Migrated in {time.monotonic() - started:.0f} s; seeding {total:,} certificates...", flush=True)
    pem, ca_key, ca = dummy_pem()
    seeding = time.monotonic()
    seeded = seed(total, pem)
    from certificates.models import Certificate, ExpiryTally

    ExpiryTally.settle()  # as the sweep does every minute: the seeding's COPYs appended rows per chunk
    with connection.cursor() as cursor:  # and as autovacuum then does: the folded rows leave the index
        cursor.execute("VACUUM ANALYZE certificates_expirytally")
    seed_seconds = time.monotonic() - seeding
    print(
        f"Seeded {seeded.certificates:,} certificates, {seeded.organisations:,} organisations, "
        f"{seeded.events:,} events, {seeded.orders:,} orders in {seed_seconds:.0f} s",
        flush=True,
    )
    for noisy in ("axes", "certificates.trust"):  # a line per login, per unverified import
        logging.getLogger(noisy).setLevel(logging.WARNING)
    user = get_user_model().objects.create_superuser("bench", "bench@example.dk", "bench-password-1")
    client = Client()
    client.force_login(user)
    baseline = get(client, reverse("bench-empty"))
    page_size = settings.TRUSTVIEW_PAGE_SIZE
    deep_page = max(1, total // page_size // 2)
    listing = reverse("certificates:list")
    from certificates.alerts import send_monthly_status
    from certificates.paging import encode_cursor

    now = timezone.now()
    due_count = Certificate.objects.due_for_renewal(now).count()
    tallied, counted = Certificate.objects.tallied_state_counts(now), Certificate.objects.state_counts(now)
    counted = {key: counted[key] for key in tallied}
    assert tallied == counted, f"the dashboard's tally says {tallied}, counting says {counted}"
    figures: dict[str, dict[str, Any]] = {}

    def measure(name: str, fn: Timer, against: Timer = baseline, note: str = "") -> None:
        gc.collect()
        result = paired(fn, against, rounds)
        result["note"] = note
        figures[name] = result
        print(
            f"  {name:<42} {result['median']:8.1f}x  (min {result['min']:.1f}, max {result['max']:.1f})",
            flush=True,
        )

    print(f"Measuring ({rounds} interleaved rounds each, ratio to the empty page unless noted):", flush=True)
    measure("dashboard", get(client, reverse("home")))
    measure("list, page 1", get(client, listing))
    # A deep page as a user reaches it, by the "Next" link: the cursor of the last row of the page before.
    before_deep = Certificate.objects.order_by("not_after", "id")[(deep_page - 1) * page_size - 1]
    deep_cursor = encode_cursor(before_deep, ("not_after", "id"))
    measure(f"list, page {deep_page}", get(client, f"{listing}?page={deep_page}&after={deep_cursor}"))
    measure("search: fingerprint prefix", get(client, f"{listing}?q={seeded.sample_fingerprint}"))
    measure("search: exact CVR", get(client, f"{listing}?q={seeded.sample_cvr}"))
    measure("search: CN words", get(client, f"{listing}?q={seeded.sample_cn_words}"))
    measure("search: one common word", get(client, f"{listing}?q={seeded.sample_common_word}"))
    measure("search: organisation name", get(client, f"{listing}?q={seeded.sample_org_name}"))
    measure("detail page", get(client, reverse("certificates:detail", args=[seeded.sample_detail_pk])))

    retry = now - dt.timedelta(hours=settings.TRUSTVIEW_FAILED_RENEWAL_RETRY_HOURS)

    def raw_due() -> object:
        with connection.cursor() as cursor:
            cursor.execute(DUE_SQL, {"now": now, "retry": retry})
            return cursor.fetchall()

    raw_count = len(raw_due())  # type: ignore[arg-type]
    assert raw_count == due_count, f"the raw SQL finds {raw_count} due, the ORM {due_count}"
    due_ids = lambda: list(Certificate.objects.due_for_renewal(now).values_list("pk", flat=True))  # noqa: E731
    sweep_read = lambda: list(Certificate.objects.due_for_renewal(now).values_list("pk", flat=True))  # noqa: E731 (renewal.sweep's read)
    measure(
        "what is due (ORM ids) vs raw SQL", due_ids, raw_due, note=f"ratio to the raw SQL; {due_count} due"
    )
    measure("what is due (the sweep's read) vs raw SQL", sweep_read, raw_due, note="ratio to the raw SQL")
    measure("what is due (ORM ids)", due_ids, note="ratio to the empty page")
    measure("raw SQL of what is due", raw_due, note="ratio to the empty page")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + DUE_SQL, {"now": now, "retry": retry})
        due_plan = "\n".join(row[0] for row in cursor.fetchall())

    # The monthly status e-mail: its memory (tracemalloc's peak of Python allocations) and its time.
    def monthly() -> object:
        mail.outbox = []
        assert send_monthly_status(now)
        return mail.outbox

    monthly_rounds = max(3, rounds // 5)
    figures["monthly status e-mail"] = paired(monthly, baseline, monthly_rounds)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    sent = monthly()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = sent[0]  # type: ignore[index]
    figures["monthly status e-mail"].update(
        note=f"{monthly_rounds} rounds",
        peak_python_mb=peak / 2**20,
        max_rss_growth_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        email_bytes=len(message.body) + sum(len(str(a[0])) for a in message.alternatives),
    )
    print(
        f"  {'monthly status e-mail':<42} {figures['monthly status e-mail']['median']:8.1f}x  "
        f"peak {peak / 2**20:.0f} MB of Python objects, e-mail "
        f"{figures['monthly status e-mail']['email_bytes'] / 2**20:.1f} MB",
        flush=True,
    )

    # Import: one bundle of 1,000 certificates through the import service, rolled back after each run.
    from certificates.services import import_certificate_file

    import_rounds = max(2, rounds // 5)
    rates, ratios = [], []
    for index in range(import_rounds):
        bundle = import_bundle(ca_key, ca, 1000, str(index))
        base = timed(baseline)
        with transaction.atomic():
            start = time.perf_counter()
            outcomes = import_certificate_file(bundle, actor=user, filename="bench.pem")
            took = time.perf_counter() - start
            transaction.set_rollback(True)
        assert len(outcomes) == 1000, len(outcomes)
        rates.append(1000 / took)
        ratios.append(took / 1000 / base)
    figures["import: bundle of 1,000"] = {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "certificates_per_second": statistics.median(rates),
        "note": f"ratio of one certificate's import to the empty page; {import_rounds} rounds",
    }
    print(
        f"  {'import: bundle of 1,000 (per certificate)':<42} {statistics.median(ratios):8.1f}x  "
        f"{statistics.median(rates):.0f} certificates/s",
        flush=True,
    )
    from bench.jobs import measure as measure_jobs  # revocation, /metrics, CSV, the jobs' memory

    jobs = measure_jobs(total)
    print_table(total, figures)
    return {
        "certificates": total,
        "rounds": rounds,
        "postgresql": connection.cursor().connection.info.server_version,
        "seed_seconds": seed_seconds,
        "seeded": seeded.__dict__,
        "due": due_count,
        "due_plan": due_plan,
        "figures": figures,
        "jobs": jobs,
        "elapsed_seconds": time.monotonic() - started,
    }


def print_table(total: int, figures: dict[str, dict[str, Any]]) -> None:
    print(f"\n| what, at {total:,} certificates | median | min | max | note |")
    print("|---|---|---|---|---|")
    for name, f in figures.items():
        extra = f.get("note", "")
        if "certificates_per_second" in f:
            extra = f"{f['certificates_per_second']:.0f} certificates/s; {extra}"
        if "peak_python_mb" in f:
            extra = (
                f"peak {f['peak_python_mb']:.0f} MB Python, e-mail {f['email_bytes'] / 2**20:.1f} MB; {extra}"
            )
        print(f"| {name} | {f['median']:.1f}x | {f['min']:.1f}x | {f['max']:.1f}x | {extra} |")
