"""Running the portal as real processes for tests: web (runserver), Celery worker and beat, Redis and
PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from . import services
from .services import free_port
from .simulator_process import Simulator

REPO = Path(__file__).resolve().parents[1]


def portal_env(var_dir: Path, simulator: Simulator, **extra: str) -> dict[str, str]:
    """The environment of a portal with its own state directory, pointed at the test simulator."""
    # Each portal has its own broker: the embedded one unless `extra` names a Redis. Inheriting the test
    # run's REDIS_URL would let one portal's worker take another's tasks (with another database).
    inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env = {
        **inherited,
        "TRUSTVIEW_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'trustview.sqlite3'}",
        "MITID_TEST_URL": simulator.base_url("test"),
        "MITID_PRODUCTION_URL": simulator.base_url("production"),
        "MITID_CA_BUNDLE": simulator.tls_ca,
        # The simulator's roots are trusted as `make run` trusts them (certificates.trust).
        "TRUSTVIEW_TRUST_ROOTS_EXTRA": ",".join(
            str(simulator.state_dir / "ca" / name / "root.pem") for name in ("test", "production")
        ),
        **extra,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


@contextlib.contextmanager
def running(
    name: str, command: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the duration of the block; its output goes to LOG_DIR/NAME.log."""
    with (log_dir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            services.stop(process)


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "trustview", *args]


def wait_for_http(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30, read_timeout: float = 1
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=(1, read_timeout))
            return
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not come up: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)


def _unavailable(error: services.Unavailable) -> NoReturn:
    """A missing server program fails the run in CI (where `make test` installs it) and skips elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(str(error))
    pytest.skip(str(error))


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """A real Redis of its own on a free loopback port, with nothing persisted; yields its URL."""
    with (log_dir / "redis.log").open("wb") as log, contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(services.redis_server(log))
        except services.Unavailable as error:
            _unavailable(error)
        yield url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for a portal's processes; yields its URL.

    On the PostgreSQL run of `make test` it is a new database on that run's cluster; on the SQLite run
    a throw-away cluster is started for it.
    """
    run_url = os.environ.get("DATABASE_URL", "")
    if not run_url.startswith(("postgres://", "postgresql://")):
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(services.postgres_cluster())
            except services.Unavailable as error:
                _unavailable(error)
            yield url
        return
    import psycopg

    parts = urlsplit(run_url)
    name = f"trustview_portal_{secrets.token_hex(4)}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class RunningPortal:
    url: str
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        """Run a management command against this portal's database."""
        return manage(self.env, *args)


@contextlib.contextmanager
def running_portal(
    var_dir: Path, simulator: Simulator, admin: tuple[str, str], workers: int = 1, **settings: str
) -> Iterator[RunningPortal]:
    """The whole portal as `make run` starts it (web, worker, beat), with fast scheduler settings and its
    own state under `var_dir`; yields its URL. `settings` are extra environment variables."""
    env = portal_env(
        var_dir,
        simulator,
        DJANGO_SUPERUSER_USERNAME=admin[0],
        DJANGO_SUPERUSER_PASSWORD=admin[1],
        TRUSTVIEW_SWEEP_SECONDS="2",
        TRUSTVIEW_POLL_SECONDS="1",
        **settings,
    )
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_superuser")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with (
        running("web", web, env, var_dir) as server,
        running(
            "worker", celery("worker", "--loglevel", "INFO", "--concurrency", str(workers)), env, var_dir
        ),
        running("beat", celery("beat", "--loglevel", "INFO"), env, var_dir),
    ):
        wait_for_http(url + "/accounts/login/", server, var_dir / "web.log")
        yield RunningPortal(url, env)
