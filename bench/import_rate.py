"""`python -m bench.import_rate`: the bench's import of a bundle of 1,000, alone and with more rounds.

`make bench` times the import in 3 rounds among its other figures; on the shared machine that median
moves by a factor of two with the load. This seeds BENCH_CERTIFICATES (default 10,000; the rate does not
depend on it, see docs/performance.md) into a PostgreSQL of its own as `make bench` does, imports
BENCH_IMPORT_ROUNDS (default 10) bundles of 1,000 the same way (`bench.run.import_bundle`, one
transaction each, rolled back), and prints the rate's median, min and max with the CPU time each bundle
took in this process and in its PostgreSQL backend (the part of the time that the load does not change
much). BENCH_IMPORT_PROFILE=FILE also writes a cProfile of one more round to FILE.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def backend_cpu_seconds() -> float:
    """CPU time of this connection's PostgreSQL backend so far (0 where /proc cannot tell)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    total = int(os.environ.get("BENCH_CERTIFICATES", "10000"))
    rounds = int(os.environ.get("BENCH_IMPORT_ROUNDS", "10"))
    from bench.__main__ import database

    with database() as url, tempfile.TemporaryDirectory(prefix="bench-") as var:
        os.environ.update(TRUSTVIEW_VAR_DIR=var, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="bench.settings")
        for name in ("REDIS_URL", "CELERY_BROKER_URL"):
            os.environ.pop(name, None)
        import django

        django.setup()
        measure(total, rounds)
    return 0


def measure(total: int, rounds: int) -> None:
    import logging

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from django.test.utils import setup_test_environment

    from bench.run import dummy_pem, import_bundle
    from bench.seed import seed
    from certificates.services import import_certificate_file

    setup_test_environment()
    call_command("migrate", verbosity=0, interactive=False)
    pem, ca_key, ca = dummy_pem()
    seed(total, pem)
    for noisy in ("axes", "certificates.trust"):  # as bench.run: a line per unverified certificate
        logging.getLogger(noisy).setLevel(logging.WARNING)
    user = get_user_model().objects.create_superuser("bench", "bench@example.dk", "bench-password-1")
    profile_to = os.environ.get("BENCH_IMPORT_PROFILE")

    def once(index: int, profiler: cProfile.Profile | None = None) -> tuple[float, float, float]:
        bundle = import_bundle(ca_key, ca, 1000, str(index))
        with transaction.atomic():
            backend = backend_cpu_seconds()
            started, cpu = time.perf_counter(), time.process_time()
            with profiler or contextlib.nullcontext():
                outcomes = import_certificate_file(bundle, actor=user, filename="bench.pem")
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            backend = backend_cpu_seconds() - backend
            transaction.set_rollback(True)
        assert len(outcomes) == 1000, len(outcomes)
        return took, cpu, backend

    once(-1)  # warm-up
    runs = [once(index) for index in range(rounds)]
    rates = [1000 / took for took, _, _ in runs]
    print(
        f"import of a bundle of 1,000 at {total:,} certificates, {rounds} rounds: "
        f"median {statistics.median(rates):.0f}/s (min {min(rates):.0f}, max {max(rates):.0f}); "
        f"CPU per bundle: this process {1000 * statistics.median(c for _, c, _ in runs):.0f} ms, "
        f"PostgreSQL {1000 * statistics.median(b for _, _, b in runs):.0f} ms (medians)",
        flush=True,
    )
    if profile_to:
        profiler = cProfile.Profile()
        once(rounds, profiler)
        profiler.dump_stats(profile_to)
        print(f"cProfile of one more round written to {profile_to}")


if __name__ == "__main__":
    sys.exit(main())
