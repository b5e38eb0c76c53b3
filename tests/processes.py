"""Running the portal as real processes for tests: web (runserver), Celery worker and beat, Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .simulator_process import Simulator

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def portal_env(var_dir: Path, simulator: Simulator, **extra: str) -> dict[str, str]:
    """The environment of a portal with its own state directory, pointed at the test simulator."""
    env = {
        **os.environ,
        "TRUSTVIEW_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'trustview.sqlite3'}",
        "MITID_TEST_URL": simulator.base_url("test"),
        "MITID_PRODUCTION_URL": simulator.base_url("production"),
        "MITID_CA_BUNDLE": simulator.tls_ca,
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
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "trustview", *args]


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not come up: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """A real Redis on a free loopback port, with nothing persisted; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: `make test` installs Debian's redis-server package.")
        pytest.skip("redis-server is not installed (`make test` installs it)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with running("redis", command, dict(os.environ), log_dir) as process:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: {(log_dir / 'redis.log').read_text()}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"


@contextlib.contextmanager
def running_portal(
    var_dir: Path, simulator: Simulator, admin: tuple[str, str], workers: int = 1, **settings: str
) -> Iterator[str]:
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
        yield url
