"""`python -m bench` (`make bench`): seed N certificates on a throw-away PostgreSQL and measure.

Environment: BENCH_CERTIFICATES (default 100000), BENCH_ROUNDS (interleaved rounds per figure, default 15),
BENCH_DATABASE_URL (an existing, empty PostgreSQL database to use instead of starting a cluster; it is
migrated and filled). Prints a table and writes var/bench/bench-N-TIMESTAMP.json (and latest.json).
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


def main() -> int:
    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers, which stop PostgreSQL

    signal.signal(signal.SIGTERM, stop_on_signal)
    total = int(os.environ.get("BENCH_CERTIFICATES", "100000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    started = time.monotonic()
    with database() as url, contextlib.ExitStack() as stack:
        import tempfile

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
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2, default=str)
    (out / f"bench-{total}-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    print(f"\nWritten to var/bench/bench-{total}-{stamp}.json in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
