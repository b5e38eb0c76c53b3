"""A stopped beat, or stopped workers, reach a person by e-mail without anyone polling /scheduler.

The renewal sweep is sent by beat and run by a worker; when it stops, whichever of the two still runs
notices (trustview/celery.py) and the alert recipients get one e-mail per outage, saying who noticed, and
one when the sweep runs again. Real processes: a Celery worker and beat on the embedded broker, a real
SMTP server, with the scheduler's intervals shortened to seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trustview.run import WORKER_OPTIONS

from .support.processes import celery, migrate, portal_env, running, running_smtp_server
from .test_alerts import Inbox

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

FAST = {
    "TRUSTVIEW_SWEEP_SECONDS": "2",
    "TRUSTVIEW_SCHEDULER_SWEEP_MARGIN": "3",  # stale after 6 s without a sweep
    "TRUSTVIEW_SCHEDULER_GRACE_SECONDS": "1",
    "TRUSTVIEW_SCHEDULER_CHECK_SECONDS": "1",
    "TRUSTVIEW_ALERT_EMAILS": "ops@example.dk",
}


def wait_for_subjects(inbox: Inbox, count: int, what: str, logs: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(inbox.messages) < count:
        if time.monotonic() > deadline:
            tails = {
                name: (logs / name).read_text(errors="replace")[-2000:]
                for name in ("worker.log", "beat.log")
                if (logs / name).exists()
            }
            pytest.fail(f"no e-mail {what!r}; got {[m['Subject'] for m in inbox.messages]}; {tails}")
        time.sleep(0.2)
    return [str(message["Subject"]) for message in inbox.messages]


def body(inbox: Inbox, index: int) -> str:
    return inbox.messages[index].get_body(preferencelist=("plain",)).get_content()  # type: ignore[no-any-return]


def test_a_worker_tells_of_a_stopped_beat_and_beat_tells_of_stopped_workers(simulator, tmp_path):
    inbox = Inbox()
    with running_smtp_server(inbox) as smtp_port:
        env = portal_env(tmp_path, simulator, **FAST, EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}")
        migrate(env)
        worker_command = celery("worker", *WORKER_OPTIONS, "--concurrency", "1")
        with running("worker", worker_command, env, tmp_path) as worker:
            # Beat has never run: the worker notices once its grace period is over.
            subjects = wait_for_subjects(inbox, 1, "scheduler stopped", tmp_path)
            assert subjects == ["[trustview] The scheduler has stopped: no renewals, no alerts"]
            assert "A worker noticed this, so the workers run: check Celery beat first." in body(inbox, 0)

            with running("beat", celery("beat", "--loglevel", "INFO"), env, tmp_path):
                subjects = wait_for_subjects(inbox, 2, "the scheduler runs again", tmp_path)
                assert "runs again" in subjects[1], subjects

                # Now the worker stops: beat keeps sending the sweep, nobody runs it, and beat tells.
                worker.terminate()
                worker.wait(timeout=30)
                subjects = wait_for_subjects(inbox, 3, "scheduler stopped, noticed by beat", tmp_path)
                # The worker went on checking every second until beat ran: still one e-mail per outage.
                assert subjects[2] == subjects[0] and len(subjects) == 3
                assert "Celery beat noticed this, so beat runs" in body(inbox, 2)
