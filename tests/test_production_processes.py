"""The production stack's processes without Docker: separate Celery worker and beat processes renew a
certificate on PostgreSQL and Redis, and gunicorn serves the portal in production mode.

Time is compressed: certificates live 2 minutes, the sweep runs every 2 seconds, and the certificate is
issued on the simulator's clock 80 seconds ago, so its renewal is due at once. (The same promise on
`make run`'s processes, SQLite and the embedded broker, is a browser journey in
tests/e2e/test_renewal_journey.py.)
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from cryptography.fernet import Fernet

from .support.processes import (
    Simulator,
    free_port,
    manage,
    migrate,
    portal_env,
    postgres_database,
    redis_server,
    running,
    running_portal,
    wait_for_http,
)

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

ADMIN = ("ops", "ops-password-42")

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


def renewed_from(database_url: str) -> dict[int, int]:
    """Certificate id -> id of the certificate it renewed, read straight from PostgreSQL."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id, renewed_from_id FROM certificates_certificate WHERE renewed_from_id IS NOT NULL"
        ).fetchall()
    return {row[0]: row[1] for row in rows}


def test_worker_and_beat_renew_a_certificate_on_postgresql_and_redis(simulator: Simulator, tmp_path: Path):
    simulator.cli("enable-renewal", "--cvr", "42424242")
    simulator.cli("set-renewal-delay", "--seconds", "1")
    simulator.cli("set-validity", "--minutes", str(LIFETIME_MINUTES))
    try:
        with (
            postgres_database() as database_url,
            redis_server(tmp_path) as redis_url,
            running_portal(
                tmp_path, simulator, ADMIN, workers=2, DATABASE_URL=database_url, REDIS_URL=redis_url
            ) as portal,
        ):
            profile = simulator.create_profile(cvr="42424242", name="Kortlivet system")
            with simulator.clock(-AGE_SECONDS):
                original = issue_through_the_page(
                    portal.url, {"pin": profile["pin"], "reference_number": profile["reference_number"]}
                )
            deadline = time.monotonic() + 60
            while original not in renewed_from(database_url).values() and time.monotonic() < deadline:
                time.sleep(0.5)
            worker_log = (tmp_path / "worker.log").read_text(errors="replace")
            assert original in renewed_from(database_url).values(), worker_log[-4000:]
            assert len(renewed_from(database_url)) == 1  # exactly one renewal, whichever worker woke first

            # Ready: PostgreSQL answers and Redis accepts connections; and beat's sweeps run on a worker.
            ready = requests.get(portal.url + "/readyz", timeout=30)
            assert ready.status_code == 200, ready.text
            assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
                "database": True,
                "broker": True,
            }
            scheduler = requests.get(portal.url + "/scheduler", timeout=30)
            assert scheduler.status_code == 200, scheduler.text
            assert scheduler.json()["sweep"]["last_success"], scheduler.text
            # Beat's container health check, run as docker-compose.yml runs it.
            check = subprocess.run(
                [sys.executable, "-m", "trustview.health", "sweep"],
                cwd=Path(__file__).resolve().parents[1],
                env=portal.env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        simulator.cli("set-validity", "--default")
        simulator.cli("set-renewal-delay", "--seconds", "5")

    assert "Sending due task renewal-sweep" in (tmp_path / "beat.log").read_text(errors="replace")
    assert "certificates.tasks.process_order" in worker_log


def production_env(tmp_path: Path, simulator: Simulator, **extra: str) -> dict[str, str]:
    """The documented production variables (docs/operations.md) for a portal on this machine."""
    return portal_env(
        tmp_path,
        simulator,
        TRUSTVIEW_ENV="production",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        TRUSTVIEW_KEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        TRUSTVIEW_BEHIND_PROXY="true",
        DJANGO_STATIC_ROOT=str(tmp_path / "staticfiles"),
        **extra,
    )


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_dir: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "trustview.wsgi",
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--access-logfile=-",
    ]
    with running("gunicorn", command, env, log_dir) as process:
        url = f"http://127.0.0.1:{port}"
        # The socket accepts before a worker has loaded Django, so the first answer may take seconds.
        wait_for_http(url + "/healthz", process, log_dir / "gunicorn.log", read_timeout=15)
        yield url


def test_gunicorn_serves_the_portal_in_production_mode(simulator: Simulator, tmp_path: Path):
    closed_port = free_port()
    env = production_env(tmp_path, simulator, REDIS_URL=f"redis://:redis-secret-pw@127.0.0.1:{closed_port}/0")
    migrate(env)
    manage(env, "collectstatic", "--noinput")  # what the image does when it is built
    with gunicorn(env, tmp_path) as url:
        assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok"}

        # The broker is down: not ready, and the answer says why. Beat has never swept, but a fresh start
        # has a grace period before /scheduler says so.
        ready = requests.get(url + "/readyz", timeout=10)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == {"ok": True}
        assert checks["broker"]["ok"] is False
        scheduler = requests.get(url + "/scheduler", timeout=10).json()
        assert scheduler["sweep"]["starting"] is True and scheduler["sweep"]["error"] == "no sweep yet"
        assert "redis-secret-pw" not in ready.text and str(closed_port) not in ready.text

        # Plain HTTP is redirected; through the TLS proxy (X-Forwarded-Proto) pages come with HSTS and
        # cookies that browsers send over HTTPS only.
        plain = requests.get(url + "/accounts/login/", allow_redirects=False, timeout=10)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        login = requests.get(url + "/accounts/login/", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert login.status_code == 200
        assert login.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        assert "secure" in login.headers["Set-Cookie"].lower()

        # Static files: hashed names from the collected manifest, served by WhiteNoise with a long cache.
        stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login.text)
        assert stylesheet, login.text[:2000]
        css = requests.get(url + stylesheet.group(1), headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert css.status_code == 200 and "max-age=315360000" in css.headers["Cache-Control"]

        # The web container's health check, as docker-compose.yml runs it.
        probe = subprocess.run(
            [sys.executable, "-m", "trustview.health", "probe", url + "/healthz"],
            env={**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr


def test_liveness_does_not_need_the_database(simulator: Simulator, tmp_path: Path):
    closed_port = free_port()
    env = production_env(
        tmp_path,
        simulator,
        DATABASE_URL=f"postgres://trustview:db-secret-pw@127.0.0.1:{closed_port}/trustview",
    )
    with gunicorn(env, tmp_path) as url:
        assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok"}
        ready = requests.get(url + "/readyz", timeout=10)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"]["ok"] is False
        assert requests.get(url + "/scheduler", timeout=10).status_code == 503
        assert "db-secret-pw" not in ready.text
