"""`python -m bench` (`make bench`): seed N certificates on a throw-away PostgreSQL and measure.

Environment: BENCH_CERTIFICATES (default 100000), BENCH_ROUNDS (interleaved rounds per figure, default 15),
BENCH_DATABASE_URL (an existing, empty PostgreSQL database to use instead of starting a cluster; it is
migrated and filled), BENCH_RENEWALS (renewals end to end, default 80; 0 leaves that figure out) and
BENCH_RENEWAL_KEYS (keys per measurement of the simulator's key generation rate, default 30). Prints a
table and writes var/bench/bench-N-TIMESTAMP.json (and latest.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def database() -> Iterator[str]:
    """The benchmark's database: BENCH_DATABASE_URL, else a PostgreSQL cluster of its own (as `make test`)."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    from tests.support.processes import postgres_cluster

    with postgres_cluster() as url:
        yield url


def renewal_figure(url: str) -> dict[str, Any] | None:
    """The figure "renewal, end to end" (bench/renewals.py), taken first, on a copy of the still empty
    database, with processes of its own; None when BENCH_RENEWALS is 0."""
    from bench import renewals

    if renewals.settings()[0] == 0:
        return None
    copy = renewals.copy_database(url)
    try:
        return renewals.run(copy)
    finally:
        renewals.drop_database(copy)


def main() -> int:
    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers, which stop PostgreSQL

    signal.signal(signal.SIGTERM, stop_on_signal)
    total = int(os.environ.get("BENCH_CERTIFICATES", "100000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    started = time.monotonic()
    with database() as url, contextlib.ExitStack() as stack:
        import tempfile

        renewals = renewal_figure(url)

        # The portal's own var/ (SQLite, Celery's file broker) stays untouched; results go to REPO/var/bench.
        os.environ["TRUSTVIEW_VAR_DIR"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
        os.environ["DATABASE_URL"] = url
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        for name in ("REDIS_URL", "CELERY_BROKER_URL"):
            os.environ.pop(name, None)
        import django

        django.setup()
        from bench.run import run

        report = run(total, rounds, started)
        report["renewals"] = renewals
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2, default=str)
    (out / f"bench-{total}-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    if renewals is not None:
        print(
            f"\nRenewal, end to end: {renewals['renewals_per_second']:.2f} renewals/s = "
            f"{renewals['ratio']:.2f} of the simulator's {renewals['keys_per_second']:.2f} RSA-3072 keys/s "
            "(target 0.8)"
        )
    print(f"\nWritten to var/bench/bench-{total}-{stamp}.json in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
