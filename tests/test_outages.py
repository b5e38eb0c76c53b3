"""Proof under outages (issue 11, item 9): the CA (the simulator) down for what is minutes of the portal's
time, then Redis and PostgreSQL restarted while the renewals run. Everything resumes, nothing is renewed
twice, and a person is told once when renewals start failing and once when they succeed again.

The real processes run as in production: PostgreSQL, Redis, a Celery worker and beat, the simulator and
an SMTP server that collects what the portal sends. Time is compressed as in
test_renewal_under_faults.py (certificates live 5 minutes; the sweep runs every second and backoff is
capped at 3 seconds, so each order meets in seconds the failures that production backoff spreads over
minutes). The test prints one line of figures.
"""

from __future__ import annotations

import contextlib
import email
import threading
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from .support.processes import (
    Simulator,
    Unavailable,
    _unavailable,
    migrate,
    portal_env,
    restartable_postgres,
    restartable_redis,
    running,
    running_smtp_server,
)
from .test_renewal_under_faults import (
    FAST,
    ca,
    celery,
    issue_due,
    killable_worker,
    own_simulator,  # noqa: F401  (a fixture)
    renewals,
    rows,
    wait_until,
)

pytestmark = pytest.mark.slow
COUNT = 3
FAILING = "Renewals keep failing"
RECOVERED = "Renewals succeed again"


@contextlib.contextmanager
def supervised_worker(env: dict[str, str], log: Path, concurrency: int) -> Iterator[list[float]]:
    """A Celery worker that is started again whenever it exits, as docker-compose.yml's
    `restart: unless-stopped` does; yields the list of times it had to be started again."""
    restarts: list[float] = []
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        current = stack.enter_context(killable_worker(env, log, concurrency=concurrency))

        def supervise() -> None:
            nonlocal current
            while not stop.wait(0.2):
                if current.poll() is not None:
                    restarts.append(time.monotonic())
                    current = stack.enter_context(killable_worker(env, log, concurrency=concurrency))

        supervisor = threading.Thread(target=supervise, daemon=True)
        supervisor.start()
        try:
            yield restarts
        finally:
            stop.set()
            supervisor.join()


class Inbox:
    """What the portal's SMTP client delivered."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]

    def count(self, text: str) -> int:
        return sum(text in subject for subject in self.subjects())


def test_ca_down_then_redis_and_postgresql_restarted_mid_run_everything_resumes_and_a_person_is_told_once(
    own_simulator: Simulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    simulator, inbox = own_simulator, Inbox()
    figures: list[str] = []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            database, restart_postgres = stack.enter_context(restartable_postgres())
            redis_log = stack.enter_context((tmp_path / "redis.log").open("wb"))
            redis_url, restart_redis = stack.enter_context(restartable_redis(redis_log))
        except Unavailable as error:
            _unavailable(error)
        smtp_port = stack.enter_context(running_smtp_server(inbox))
        settings = {
            **FAST,
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "TRUSTVIEW_ALERT_EMAILS": "ops@example.dk",
            "TRUSTVIEW_ALERT_AFTER_FAILURES": "2",  # the outage is told of at an order's second failure
        }
        env = portal_env(tmp_path, simulator, **settings)
        migrate(env)
        issue_due(simulator, env, COUNT)
        figures.append(f"set-up {time.monotonic() - started:.1f} s")
        originals = {row[0] for row in rows(database, "SELECT id FROM certificates_certificate")}
        before = ca(simulator)
        worker_log = tmp_path / "worker.log"

        def attempts() -> list[int]:
            return [row[0] for row in rows(database, "SELECT attempts FROM certificates_order")]

        def log_tail() -> str:
            return f"e-mails {inbox.subjects()}; worker: {worker_log.read_text(errors='replace')[-3000:]}"

        # 1. The CA is down: every renewal fails, one e-mail tells of the outage.
        simulator.stop()
        down_at = time.monotonic()
        worker_restarts = stack.enter_context(supervised_worker(env, worker_log, COUNT))
        stack.enter_context(running("beat", celery("beat", "--loglevel", "INFO"), env, tmp_path))
        wait_until(lambda: inbox.count(FAILING) >= 1, 60, log_tail)
        # Down until every order has failed repeatedly: with production backoff (30 s doubling, capped at
        # an hour) and the default of 5 failures before anyone is told, that is minutes of portal time.
        wait_until(lambda: len(attempts()) == COUNT and min(attempts()) >= 2, 60, log_tail)
        failures_while_down = sum(attempts())

        # 2. Redis restarts (it keeps nothing: queued order steps are lost), and the CA comes back.
        restart_redis()
        simulator.restart()
        figures.append(
            f"CA down {time.monotonic() - down_at:.1f} s ({failures_while_down} failed calls, "
            f"{min(attempts())}+ per order); Redis restarted"
        )
        redis_restarted_at = time.monotonic()

        # 3. PostgreSQL restarts while the renewals run.
        wait_until(lambda: len(renewals(database)) >= 1, 60, log_tail)
        done_before_restart = len(renewals(database))
        restart_postgres()
        restarted_at = time.monotonic()
        wait_until(lambda: len(renewals(database)) == COUNT, 60, log_tail)
        figures.append(
            f"PostgreSQL restarted after {done_before_restart}/{COUNT} renewals, "
            f"all renewed {time.monotonic() - restarted_at:.1f} s later"
        )

        # 4. One e-mail says renewals succeed again; two more sweeps send nothing more.
        wait_until(lambda: inbox.count(RECOVERED) >= 1, 30, log_tail)

        def last_sweep() -> Any:
            return rows(database, "SELECT max(last_success_at) FROM certificates_schedulerheartbeat")[0][0]

        for _ in range(2):
            seen = last_sweep()
            wait_until(lambda seen=seen: last_sweep() != seen, 30, log_tail)  # type: ignore[misc]

        orders = dict(rows(database, "SELECT state, count(*) FROM certificates_order GROUP BY state"))
        figures.append(
            f"the worker exited {len(worker_restarts)} time(s) and was started again by its supervisor"
            + "".join(f" ({t - redis_restarted_at:+.1f} s from the Redis restart)" for t in worker_restarts)
        )
        renewed = renewals(database)

    after = ca(simulator)
    duplicates = sum(n - 1 for n in renewed.values())
    subjects = inbox.subjects()
    print(
        f"\noutages: {'; '.join(figures)}; renewed {len(renewed)}/{COUNT}, duplicates {duplicates}, "
        f"CA issued {after['certificates'] - before['certificates']} in {after['orders'] - before['orders']} "
        f"orders, portal orders {orders}; e-mails: {subjects}"
    )
    assert set(renewed) == originals and duplicates == 0
    assert after["certificates"] - before["certificates"] == COUNT  # none twice at the CA
    assert orders == {"issued": COUNT}
    # A person is told once when the outage starts and once when it ends, not once per order.
    assert inbox.count(FAILING) == 1 and inbox.count(RECOVERED) == 1
    assert len(subjects) == len(set(subjects)), subjects
    failing = next(m for m in inbox.messages if FAILING in str(m["Subject"]))
    body = failing.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Renewals keep failing: {COUNT} certificates affected" in str(failing["Subject"]), body
