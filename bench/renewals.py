"""The "renewal, end to end" figure of `make bench`: renewals a second through a real Celery worker against
the MitID Erhverv simulator over HTTPS, as a ratio of the simulator's RSA-3072 key generation rate
measured in the same run (issue 12: at least 0.8 with the worker concurrency docs/operations.md
recommends).

The parts, each a process of its own as in production: Redis (the broker), the simulator (`python -m
mitid.simulator serve`, a fresh state whose CA keys are the test suite's), one Celery worker with
`CELERY_WORKER_CONCURRENCY` (2) processes on the portal's queues, and a driver (`python -m bench.renewals
drive N`, Django on the same database) that sends the renewal sweep once, as beat does, and watches the
orders. No beat: the figure is one sweep's orders, from the first order opened to the last certificate
issued (the orders' own timestamps in the database).

The simulator makes each certificate's RSA-3072 key when the order's certificate is collected, inside its
one write transaction: one key at a time, whatever the number of cores. So its rate is one process making
keys one after another, as `pki.issue_certificate` makes them (`python -m bench.renewals keygen K`),
measured before and after the renewals; the figure uses their mean.

The N certificates to renew are issued through the portal's own issue service (`mitid.services`) on the
simulator's clock moved back, so they are due at once. Their keys come from the simulator's key pool,
filled with copies of one key: seeding costs no key generation, and the pool is empty again (each copy
is taken once) before the renewals start, so every renewal makes its key.

Standalone: `python -m bench.renewals` starts a PostgreSQL cluster of its own (BENCH_RENEWALS, default
80; BENCH_RENEWAL_KEYS, default 30, keys per rate measurement).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
CVR = "52525252"
# Certificates that live an hour, issued 45 minutes ago on the simulator's clock: due at once (a third of
# the lifetime left), with 15 minutes for the run; their renewals live an hour from now.
LIFETIME_MINUTES = 60
AGE_SECONDS = 45 * 60
# docs/operations.md: each worker runs CELERY_WORKER_CONCURRENCY (default 2, docker-compose.yml) at once.
RECOMMENDED_CONCURRENCY = 2
LOGS = REPO / "var" / "bench"

ISSUE = """
import json, sys
from mitid.services import issue_certificate
for profile in json.load(sys.stdin):
    issue_certificate(environment="test", actor="bench", **profile)
"""


def settings() -> tuple[int, int, int]:
    """(renewals, keys per rate measurement, worker concurrency) from the environment."""
    return (
        int(os.environ.get("BENCH_RENEWALS", "80")),
        int(os.environ.get("BENCH_RENEWAL_KEYS", "30")),
        int(os.environ.get("BENCH_RENEWAL_CONCURRENCY", str(RECOMMENDED_CONCURRENCY))),
    )


# --- in a child process -----------------------------------------------------------------------------


def keygen(count: int) -> dict[str, float]:
    """Make `count` RSA-3072 keys one after another, as the simulator makes a certificate's key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from mitid.simulator.pki import LEAF_KEY_BITS

    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "keys": count,
        "seconds": took,
        "keys_per_second": count / took,
        "cpu_seconds_per_key": cpu / count,
    }


def drive(count: int, timeout: float) -> dict[str, Any]:
    """Send the renewal sweep once (as beat does) and wait until `count` renewal orders have issued their
    certificate; the figure is taken from the orders' own timestamps."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustview.settings")
    django.setup()
    from django.db.models import Max, Min

    from certificates.choices import OrderKind, OrderState
    from certificates.models import Certificate, Order
    from certificates.tasks import sweep

    due = Certificate.objects.due_for_renewal().count()
    if due != count:
        raise SystemExit(f"{due} certificates are due for renewal, expected {count}")
    renewals = Order.objects.filter(kind=OrderKind.RENEW)
    sent = time.time()
    sweep.apply_async()
    deadline = time.monotonic() + timeout
    while True:
        issued = renewals.filter(state=OrderState.ISSUED).count()
        failed = renewals.filter(state=OrderState.FAILED).count()
        if issued + failed >= count or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    span = renewals.aggregate(first=Min("created_at"), last=Max("completed_at"), last_open=Max("created_at"))
    first, last = span["first"], span["last"]
    seconds = (last - first).total_seconds() if first and last else float("nan")
    attempts = list(renewals.values_list("attempts", flat=True))
    errors = sorted(set(renewals.exclude(last_error_code="").values_list("last_error_code", flat=True)))
    return {
        "renewals": count,
        "issued": issued,
        "failed": failed,
        "seconds": seconds,
        "renewals_per_second": issued / seconds if seconds > 0 else 0.0,
        "sweep_sent_to_first_order_seconds": (first.timestamp() - sent) if first else None,
        "orders_opened_in_seconds": (span["last_open"] - first).total_seconds() if first else None,
        "retried_orders": sum(1 for a in attempts if a),
        "errors": errors,
    }


# --- the orchestration -----------------------------------------------------------------------------


def _python(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - this interpreter, our modules and arguments
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and its live children, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def key_rate(count: int) -> dict[str, float]:
    """The simulator's way of making keys, in a fresh process: keys a second."""
    return dict(json.loads(_python("-m", "bench.renewals", "keygen", str(count)).splitlines()[-1]))


def copy_database(url: str) -> str:
    """A database beside `url` on the same server for the renewals (so the figure's sweep sees only its
    own certificates): a copy of `url`'s database while nobody is connected to it (then it is already
    migrated), else an empty one. Returns its URL."""
    import psycopg

    parts = urlsplit(url)
    source = parts.path.lstrip("/")
    name = f"{source}_renewals"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        try:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        except psycopg.errors.ObjectInUse:  # someone is connected to the source
            connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def _one_key_pool(state: Path, count: int) -> None:
    """The simulator's key pool as `count` copies of one RSA-3072 key (see the module's docstring)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from mitid.simulator.pki import KEY_POOL_DIR, LEAF_KEY_BITS

    pool = state / KEY_POOL_DIR
    shutil.rmtree(pool, ignore_errors=True)
    pool.mkdir()
    der = rsa.generate_private_key(public_exponent=65537, key_size=LEAF_KEY_BITS).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for index in range(count):
        (pool / f"{index:06d}.der").write_bytes(der)


@contextlib.contextmanager
def _simulator(directory: Path, count: int) -> Iterator[Any]:
    from tests.support.processes import fresh_state, running_simulator, simulator_keys

    state = fresh_state(simulator_keys(directory / "keys"), directory / "simulator")
    _one_key_pool(state, count)
    with running_simulator(state) as simulator:
        simulator.cli("enable-renewal", "--cvr", CVR)
        simulator.cli("set-validity", "--minutes", str(LIFETIME_MINUTES))
        yield simulator


def measure(database_url: str, count: int, keys: int, concurrency: int) -> dict[str, Any]:
    """The figure on the PostgreSQL database at `database_url` (migrated here if it is not)."""
    from tests.support.processes import (
        celery,
        manage,
        portal_env,
        redis_process,
        running,
        wait_for_log,
    )
    from trustview.run import WORKER_OPTIONS

    before = key_rate(keys)
    print(f"  simulator's key generation: {before['keys_per_second']:.2f} keys/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-renewals-") as temp, redis_process() as redis_url:
        directory = Path(temp)
        with _simulator(directory, count) as simulator:
            var_dir = directory / "portal"
            var_dir.mkdir()
            env = portal_env(var_dir, simulator, DATABASE_URL=database_url, REDIS_URL=redis_url)
            manage(env, "migrate", "--noinput")
            profiles = [simulator.create_profile(cvr=CVR, name=f"Renewal bench {n}") for n in range(count)]
            seeding = time.monotonic()
            with simulator.clock(-AGE_SECONDS):
                _python(
                    "manage.py",
                    "shell",
                    "-c",
                    ISSUE,
                    env=env,
                    stdin=json.dumps(
                        [{"reference_number": p["reference_number"], "pin": p["pin"]} for p in profiles]
                    ),
                )
            pooled = len(list((simulator.state_dir / "key-pool").glob("*.der")))
            assert pooled == 0, f"{pooled} pooled keys left: the renewals would not all make their keys"
            print(f"  issued {count} certificates to renew in {time.monotonic() - seeding:.0f} s", flush=True)
            worker = celery("worker", *WORKER_OPTIONS, "--concurrency", str(concurrency))
            try:
                with running("worker", worker, env, var_dir) as process:
                    wait_for_log(var_dir / "worker.log", " ready.", process)
                    timeout = float(os.environ.get("BENCH_RENEWAL_TIMEOUT", max(300.0, count * 5.0)))
                    assert simulator.process is not None
                    pids = {"simulator": simulator.process.pid, "worker": process.pid}
                    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    result = json.loads(
                        _python(
                            "-m", "bench.renewals", "drive", str(count), str(timeout), env=env
                        ).splitlines()[-1]
                    )
                    # CPU per renewal of each side (the driver's few seconds of start-up idle in both).
                    result["cpu_seconds_per_renewal"] = {
                        name: (cpu_seconds(pid) - cpu[name]) / count for name, pid in pids.items()
                    }
            finally:  # the worker's and the simulator's logs, for a figure that looks wrong
                LOGS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(var_dir / "worker.log", LOGS / "renewals-worker.log")
                shutil.copyfile(simulator.log_file, LOGS / "renewals-simulator.log")
    after = key_rate(keys)
    print(f"  simulator's key generation: {after['keys_per_second']:.2f} keys/s", flush=True)
    rate = statistics.mean([before["keys_per_second"], after["keys_per_second"]])
    result.update(
        worker_concurrency=concurrency,
        key_generation_before=before,
        key_generation_after=after,
        keys_per_second=rate,
        ratio=result["renewals_per_second"] / rate,
    )
    print(
        f"  {'renewal, end to end':<42} {result['ratio']:8.2f}  of the CA's key rate: "
        f"{result['renewals_per_second']:.2f} renewals/s ({result['issued']} of {count} in "
        f"{result['seconds']:.1f} s, concurrency {concurrency}) against {rate:.2f} keys/s",
        flush=True,
    )
    key_cpu = statistics.mean([before["cpu_seconds_per_key"], after["cpu_seconds_per_key"]])
    per_renewal = result["cpu_seconds_per_renewal"]
    print(
        f"  CPU seconds per renewal: simulator {per_renewal['simulator']:.3f}, "
        f"worker {per_renewal['worker']:.3f} (a key alone: {key_cpu:.3f})",
        flush=True,
    )
    return result


def run(database_url: str) -> dict[str, Any]:
    """`make bench`'s renewal figure (bench/__main__.py), on a database prepared by `copy_database`."""
    count, keys, concurrency = settings()
    print(f"Renewals, end to end ({count} through one worker of concurrency {concurrency}):", flush=True)
    return measure(database_url, count, keys, concurrency)


def main(argv: list[str]) -> int:
    if argv[:1] == ["keygen"]:
        print(json.dumps(keygen(int(argv[1]))))
        return 0
    if argv[:1] == ["drive"]:
        print(json.dumps(drive(int(argv[1]), float(argv[2]))))
        return 0
    from tests.support.processes import postgres_cluster

    with postgres_cluster() as url:
        result = run(url)
    print(json.dumps(result, indent=2, default=str))
    return 0 if result["failed"] == 0 and result["issued"] == result["renewals"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
