"""The promise of the product, with real processes: beat renews a certificate before it lapses, no click.

Web (runserver), a Celery worker and Celery beat run as separate processes on real Redis, against the
real simulator, with time compressed: certificates live 30 seconds, so the renewal is due when a third
of that (10 seconds) is left, and the sweep runs every 2 seconds. Rather than wait 20 seconds for that,
the simulator's clock is moved back while it issues (`set-clock`): the certificate was issued 20 seconds
ago, and from then on everyone's clock agrees that it lapses 10 seconds later.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests

from .support.processes import redis_server, running_portal

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

# A short-lived certificate (renewal due at a third of its life left), issued with the simulator's clock
# set back so that it is due at once: nothing waits for it to age. Two minutes leave 40 seconds between
# "due" and "lapsed", enough for a loaded machine to renew; a longer life costs no test time.
LIFETIME_MINUTES = 2
AGE_SECONDS = LIFETIME_MINUTES * 60 * 2 / 3  # the certificate's age when its renewal is due


def issue_through_the_page(url: str, profile: dict[str, str]) -> int:  # type: ignore[type-arg]
    """Log in and issue through /mitid/issue/ as a browser would (with CSRF); returns the certificate id."""
    session = requests.Session()
    login = session.get(url + "/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    session.post(
        url + "/accounts/login/",
        data={"username": "ops", "password": "ops-password-42", "csrfmiddlewaretoken": token},
        timeout=10,
    )
    form = session.get(url + "/mitid/issue/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    issued = session.post(
        url + "/mitid/issue/",
        data={**profile, "environment": "test", "csrfmiddlewaretoken": token},
        timeout=60,
    )
    match = re.search(r"/certificates/(\d+)/$", issued.url)
    assert match, issued.text[:2000]
    return int(match.group(1))


def certificates(database: Path) -> list[tuple[int, int | None, str, str]]:
    with sqlite3.connect(database) as db:
        return list(
            db.execute("SELECT id, renewed_from_id, not_before, not_after FROM certificates_certificate")
        )


def test_beat_renews_a_certificate_issued_in_the_portal_before_it_expires(simulator, tmp_path):
    simulator.cli("enable-renewal", "--cvr", "41414141")
    simulator.cli("set-renewal-delay", "--seconds", "1")
    simulator.cli("set-validity", "--minutes", str(LIFETIME_MINUTES))
    try:
        with (
            redis_server(tmp_path) as redis_url,
            running_portal(
                tmp_path, simulator, ("ops", "ops-password-42"), workers=2, REDIS_URL=redis_url
            ) as portal,
        ):
            profile = simulator.create_profile(cvr="41414141", name="Kortlivet system")
            with simulator.clock(-AGE_SECONDS):
                original = issue_through_the_page(
                    portal.url, {"pin": profile["pin"], "reference_number": profile["reference_number"]}
                )
            database = tmp_path / "trustview.sqlite3"
            deadline = time.monotonic() + 60
            renewal = None
            while renewal is None and time.monotonic() < deadline:
                renewal = next((row for row in certificates(database) if row[1] == original), None)
                time.sleep(0.5)
            worker_log = (tmp_path / "worker.log").read_text(errors="replace")
            assert renewal is not None, worker_log[-4000:]
    finally:
        simulator.cli("set-validity", "--default")
        simulator.cli("set-renewal-delay", "--seconds", "5")

    old = next(row for row in certificates(database) if row[0] == original)
    old_not_after = dt.datetime.fromisoformat(old[3])
    renewed_at = dt.datetime.fromisoformat(renewal[2])
    assert renewed_at < old_not_after, "renewed only after the old certificate had lapsed"
    assert len(certificates(database)) == 2  # exactly one renewal, whoever woke first
    assert "Sending due task renewal-sweep" in (tmp_path / "beat.log").read_text(errors="replace")
    assert "certificates.tasks.process_order" in worker_log
