"""Proof under faults (issue 11, item 9): the portal's real worker and beat processes renew against the
real simulator while it fails, while workers are killed, and while 50 people click Renew now at once.

Each test starts its own simulator (faults apply to every call a simulator gets) and its own portal
processes, so it uses no test database: like the other process tests it runs once, in the SQLite run of
`make test`; the PostgreSQL case starts its own PostgreSQL. Time is compressed as in
test_production_processes.py: certificates live 5 minutes and are issued on the simulator's clock 200
seconds ago, so their renewal is due at once and 100 seconds are left. Each test prints one line of figures.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from trustview.run import WORKER_OPTIONS

from .support.processes import (
    REPO,
    Simulator,
    celery,
    fresh_state,
    migrate,
    portal_env,
    postgres_database,
    redis_server,
    running,
    running_portal,
    running_simulator,
)

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

LIFETIME_MINUTES = 5
AGE_SECONDS = 200  # two thirds of the lifetime: due at once, 100 seconds left
CVR = "51515151"
ADMIN = ("ops", "ops-password-42")

# Fast scheduler settings: the sweep every second, short backoff, and a short lease (longer than a CA
# call may take, MITID_TIMEOUT_SECONDS) so a killed worker's step is taken over within seconds.
FAST = {
    "TRUSTVIEW_SWEEP_SECONDS": "1",
    "TRUSTVIEW_POLL_SECONDS": "1",
    "TRUSTVIEW_RETRY_BASE_SECONDS": "1",
    "TRUSTVIEW_RETRY_CAP_SECONDS": "3",
    "TRUSTVIEW_ALERT_AFTER_FAILURES": "1000",
    "MITID_TIMEOUT_SECONDS": "3",
    "TRUSTVIEW_ORDER_LEASE_SECONDS": "6",
}

ISSUE = """
import json, sys
from mitid.services import issue_certificate
for profile in json.load(sys.stdin):
    issue_certificate(environment="test", actor="test", **profile)
"""


@pytest.fixture
def own_simulator(seed_state: Path, tmp_path: Path) -> Iterator[Simulator]:
    with running_simulator(fresh_state(seed_state, tmp_path / "simulator")) as simulator:
        simulator.cli("enable-renewal", "--cvr", CVR)
        simulator.cli("set-renewal-delay", "--seconds", "1")
        simulator.cli("set-validity", "--minutes", str(LIFETIME_MINUTES))
        yield simulator


def issue_due(simulator: Simulator, env: dict[str, str], count: int, age: float = AGE_SECONDS) -> None:
    """`count` certificates in the portal, issued `age` seconds ago (by default: due for renewal)."""
    profiles = [simulator.create_profile(cvr=CVR, name=f"System {n}") for n in range(count)]
    with simulator.clock(-age):
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", ISSUE],
            input=json.dumps(
                [{"reference_number": p["reference_number"], "pin": p["pin"]} for p in profiles]
            ),
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )


def ca(simulator: Simulator) -> dict[str, int]:
    counts = simulator.cli("status")["environments"]["test"]
    return {"certificates": counts["certificates"], "orders": counts["orders"]}


def rows(database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the portal's database (SQLite path or PostgreSQL URL) as an operator would; `?` marks a
    parameter."""
    if database.startswith("postgres"):
        import psycopg

        with psycopg.connect(database) as connection:
            return list(connection.execute(sql.replace("?", "%s"), params).fetchall())  # type: ignore[arg-type]
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return list(connection.execute(sql, params))


def execute(database: str, sql: str) -> None:
    """Change the portal's database (SQLite path or PostgreSQL URL) behind its back."""
    if database.startswith("postgres"):
        import psycopg

        with psycopg.connect(database) as connection:
            connection.execute(sql)  # type: ignore[arg-type]
        return
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(sql)


def wait_until(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(what())
        time.sleep(0.3)


@contextlib.contextmanager
def killable_worker(
    env: dict[str, str], log: Path, concurrency: int = 2
) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker (main process and pool) in a process group of its own, so a test can kill all of
    it at once with SIGKILL, as a container that is killed or a machine that loses power."""
    command = celery("worker", *WORKER_OPTIONS, "--concurrency", str(concurrency))
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def kill(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


def portal(tmp_path: Path, simulator: Simulator, **settings: str) -> dict[str, str]:
    env = portal_env(tmp_path, simulator, **FAST, **settings)
    migrate(env)
    return env


def renewals(database: str) -> dict[int, int]:
    """Old certificate id -> how many certificates renew it (more than one would be a duplicate)."""
    found = rows(
        database,
        "SELECT renewed_from_id, count(*) FROM certificates_certificate "
        "WHERE renewed_from_id IS NOT NULL GROUP BY renewed_from_id",
    )
    return {old: count for old, count in found}


# --- 30% of CA calls fail ------------------------------------------------------------------------------


FAULTS = [  # a cycle of the faults docs/protocol.md calls transient, and a slow answer past the time-out
    ("error", "--code", "unavailable", "--retry-after", "1"),
    ("error", "--code", "rate_limited", "--retry-after", "1"),
    ("drop",),
    ("slow", "--seconds", "4"),
    ("slow", "--seconds", "1"),  # late, but within the time-out: not a failure
]


def test_due_certificates_are_all_renewed_once_while_a_third_of_ca_calls_fail(own_simulator, tmp_path):
    simulator, count = own_simulator, 8
    database = str(tmp_path / "trustview.sqlite3")
    started = time.monotonic()
    with redis_server(tmp_path) as redis_url:
        env = portal(tmp_path, simulator, REDIS_URL=redis_url)
        issue_due(simulator, env, count)
        originals = [row[0] for row in rows(database, "SELECT id FROM certificates_certificate")]
        before = ca(simulator)
        stop = threading.Event()

        def renewal_calls() -> int:
            return sum("/v1/renewals" in line for line in simulator.log().splitlines())

        def keep_failing() -> None:
            """Whenever fewer than a third of the renewal calls so far have met a fault, make the next
            call meet one (a cycle of the kinds in FAULTS)."""
            kinds, added = itertools.cycle(FAULTS), 0
            while not stop.is_set():
                if added < (renewal_calls() + 1) / 3 and not simulator.cli("fault", "list")["faults"]:
                    simulator.cli("fault", *next(kinds), "--count", "1", "--path", "/v1/renewals")
                    added += 1
                time.sleep(0.1)

        failing = threading.Thread(target=keep_failing, daemon=True)
        failing.start()
        set_up = time.monotonic() - started
        try:
            with (
                killable_worker(env, tmp_path / "worker.log", concurrency=4),
                running("beat", celery("beat", "--loglevel", "INFO"), env, tmp_path),
            ):
                wait_until(
                    lambda: len(renewals(database)) == count,
                    90,
                    lambda: (
                        f"renewed {len(renewals(database))}/{count}: "
                        + (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
                    ),
                )
                renewing = time.monotonic() - started - set_up
        finally:
            stop.set()
            failing.join()
            simulator.cli("fault", "clear")

    calls = [line for line in simulator.log().splitlines() if "/v1/renewals" in line]
    met = {kind: sum(f" {kind}" in line for line in calls) for kind in ("503", "429", "dropped")}
    # Every failure the portal met: the CA's 503 and 429, dropped connections, and time-outs (slow answers).
    failures = re.findall(r"Renewal order \d+: (\w+) \(failure", (tmp_path / "worker.log").read_text())
    met["timed out"] = len(failures) - sum(met.values())
    after = ca(simulator)
    orders = dict(rows(database, "SELECT state, count(*) FROM certificates_order GROUP BY state"))
    duplicates = sum(n - 1 for n in renewals(database).values())
    issued = after["certificates"] - before["certificates"]
    print(
        f"\nset-up {set_up:.1f} s, renewals {renewing:.1f} s (worker and beat starting included); "
        f"renewed {len(renewals(database))}/{count}, CA issued {issued}"
        f" in {after['orders'] - before['orders']} orders, duplicates {duplicates}, portal orders {orders}; "
        f"CA calls {len(calls)}, failed {len(failures)} ({len(failures) / len(calls):.0%}: "
        + ", ".join(f"{kind} {n}" for kind, n in met.items())
        + ")"
    )
    assert set(renewals(database)) == set(originals) and duplicates == 0
    assert after["certificates"] - before["certificates"] == count  # none twice at the CA
    assert after["orders"] - before["orders"] == count
    assert dict(orders) == {"issued": count}
    assert len(failures) >= len(calls) * 0.2, "too few faults met to prove anything"


# --- a worker killed during an order step --------------------------------------------------------------


def test_a_worker_killed_during_a_step_leaves_the_order_to_finish_once(own_simulator, tmp_path):
    simulator = own_simulator
    database = str(tmp_path / "trustview.sqlite3")
    worker_log = tmp_path / "worker.log"
    armed, held = tmp_path / "pause-armed", tmp_path / "pause-held"
    figures = []

    def order_of(certificate: int) -> tuple[str, int]:
        ((state, attempts),) = rows(
            database, "SELECT state, attempts FROM certificates_order WHERE certificate_id = ?", certificate
        )
        return state, attempts

    def newest_original() -> int:
        return int(
            rows(database, "SELECT max(id) FROM certificates_certificate WHERE renewed_from_id IS NULL")[0][0]
        )

    with contextlib.ExitStack() as stack:
        env = portal(
            tmp_path,
            simulator,
            REDIS_URL=stack.enter_context(redis_server(tmp_path)),
            TRUSTVIEW_ISSUERS="tests.support.hooks.PausingIssuer",
            TRUSTVIEW_TEST_PAUSE_ARM=str(armed),
            TRUSTVIEW_TEST_PAUSE_HELD=str(held),
        )
        before = ca(simulator)
        stack.enter_context(running("beat", celery("beat", "--loglevel", "INFO"), env, tmp_path))
        worker = stack.enter_context(killable_worker(env, worker_log))

        # 1. Killed while the CA request is in flight: the renewal request hangs at the CA (fault slow).
        simulator.cli("fault", "slow", "--seconds", "2.5", "--count", "1", "--path", "/v1/renewals")
        issue_due(simulator, env, 1)
        first = newest_original()
        wait_until(lambda: not simulator.cli("fault", "list")["faults"], 30, lambda: worker_log.read_text())
        time.sleep(0.5)  # the call is at the CA now
        kill(worker)
        killed_at = time.monotonic()
        worker = stack.enter_context(killable_worker(env, worker_log))
        wait_until(lambda: first in renewals(database), 30, lambda: worker_log.read_text()[-3000:])
        figures.append(f"in flight: finished {time.monotonic() - killed_at:.1f} s after the kill")

        # 2. Killed after the CA answered with the certificate, before the portal stored it (the hook).
        armed.touch()
        issue_due(simulator, env, 1)
        second = newest_original()
        wait_until(held.exists, 30, lambda: worker_log.read_text()[-3000:])
        kill(worker)
        killed_at = time.monotonic()
        assert second not in renewals(database)  # nothing stored: the worker died first
        stack.enter_context(killable_worker(env, worker_log))
        wait_until(lambda: second in renewals(database), 30, lambda: worker_log.read_text()[-3000:])
        figures.append(f"after the CA answered: finished {time.monotonic() - killed_at:.1f} s after the kill")

    after = ca(simulator)
    duplicates = sum(n - 1 for n in renewals(database).values())
    print(
        f"\nworker kills (lease 6 s): {'; '.join(figures)}; CA made "
        f"{after['orders'] - before['orders']} renewal orders for 2 certificates, duplicates {duplicates}, "
        f"orders {order_of(first)[0]}, {order_of(second)[0]}"
    )
    # Two originals and two renewals, each renewal made once at the CA and stored once in the portal.
    assert after["certificates"] - before["certificates"] == 4 and after["orders"] - before["orders"] == 2
    assert set(renewals(database)) == {first, second} and duplicates == 0
    assert order_of(first)[0] == order_of(second)[0] == "issued"


# --- 50 clicks on Renew now and the sweep, at once -----------------------------------------------------


def logged_in(url: str) -> requests.Session:
    session = requests.Session()
    login = session.get(url + "/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    session.post(
        url + "/accounts/login/",
        data={"username": ADMIN[0], "password": ADMIN[1], "csrfmiddlewaretoken": token},
        timeout=10,
    )
    return session


@pytest.mark.parametrize("database_kind", ["sqlite", "postgresql"])
def test_fifty_renew_now_clicks_and_the_sweep_make_one_renewal(own_simulator, tmp_path, database_kind):
    simulator = own_simulator
    simulator.cli("set-renewal-delay", "--seconds", "0")
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        database = str(tmp_path / "trustview.sqlite3")
        if database_kind == "postgresql":
            database = stack.enter_context(postgres_database())
            extra = {"DATABASE_URL": database, "REDIS_URL": stack.enter_context(redis_server(tmp_path))}
        fast = {
            k: v for k, v in FAST.items() if k not in ("TRUSTVIEW_SWEEP_SECONDS", "TRUSTVIEW_POLL_SECONDS")
        }
        running_ = stack.enter_context(running_portal(tmp_path, simulator, ADMIN, workers=2, **fast, **extra))
        url = running_.url
        # Not due yet; it becomes due as the clicks start, so the sweep (every second) races them.
        issue_due(simulator, running_.env, 1, age=0)
        ((certificate,),) = rows(database, "SELECT id FROM certificates_certificate")
        before = ca(simulator)
        # One administrator's login in 50 tabs (a login is a deliberately slow password hash).
        login = logged_in(url)
        sessions = []
        for _ in range(50):
            session = requests.Session()
            session.cookies.update(login.cookies)
            # runserver's listen backlog is short: a connection it resets before reading the request is
            # sent again, as a browser would (a click on Renew now may be repeated: that is the point).
            retry = Retry(total=3, allowed_methods=None, backoff_factor=0.1, status_forcelist=())
            session.mount("http://", HTTPAdapter(max_retries=retry))
            sessions.append(session)
        barrier = threading.Barrier(50)

        def click(session: requests.Session) -> int:
            token = session.cookies.get("csrftoken")
            barrier.wait(timeout=30)
            response = session.post(
                f"{url}/certificates/{certificate}/renew/",
                data={"csrfmiddlewaretoken": token},
                headers={"Referer": url + "/"},
                timeout=60,
                allow_redirects=False,
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            clicks = pool.map(click, sessions)
            execute(database, "UPDATE certificates_certificate SET renew_at = not_before")
            statuses = list(clicks)
        wait_until(lambda: certificate in renewals(database), 30, lambda: "not renewed")
        time.sleep(2)  # a few more sweeps: nothing else may follow
        orders = rows(
            database,
            "SELECT state, requested_by_label FROM certificates_order WHERE certificate_id = ?",
            certificate,
        )
        after = ca(simulator)
        print(
            f"\n{database_kind}: 50 clicks answered {sorted(set(statuses))}, orders {len(orders)} "
            f"({', '.join(map(str, orders))}), new certificates {len(renewals(database))}, "
            f"CA issued {after['certificates'] - before['certificates']} in "
            f"{after['orders'] - before['orders']} orders"
        )
        assert all(status in (200, 302, 303) for status in statuses), statuses
        assert [state for state, _by in orders] == ["issued"]
        assert renewals(database) == {certificate: 1}
        assert after["certificates"] - before["certificates"] == 1 and after["orders"] - before["orders"] == 1
