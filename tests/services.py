"""PostgreSQL and Redis started for a test run on free loopback ports, and thrown away afterwards.

`python -m tests.services -- COMMAND...` runs COMMAND with DATABASE_URL and REDIS_URL pointing at a
fresh PostgreSQL cluster and a fresh Redis: `make test` runs the suite that way first (scripts/test.sh),
then on the embedded SQLite default. Tests use the context managers directly.

Nothing here needs a system service: the cluster lives in a temporary directory (initdb, pg_ctl from
Debian's /usr/lib/postgresql/VERSION/bin) with fsync off. PostgreSQL refuses to run as root, so as root
the cluster runs as the `postgres` user that Debian's postgresql package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any


class Unavailable(RuntimeError):
    """A server program is not installed (`make test` installs it; see scripts/system-packages.sh)."""


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """End a server process politely (SIGTERM), and for good if it has not stopped within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def postgres_bindir() -> Path:
    """The newest PostgreSQL server programs: Debian keeps them off PATH, in /usr/lib/postgresql/N/bin."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise Unavailable("PostgreSQL is not installed (`make test` installs Debian's postgresql package).")


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields the URL of its `trustview` database.

    The user `trustview` owns the cluster (so it may create databases, as pytest-django does) and logs
    in with a random password; nothing is kept after the block.
    """
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="trustview-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            raise Unavailable(
                "PostgreSQL refuses to run as root and there is no `postgres` user to run it as "
                "(Debian's postgresql package creates one)."
            ) from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_urlsafe(18)
    password_file = root / "password"
    password_file.write_text(password + "\n")
    if run_as:
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    data, log = root / "data", root / "postgres.log"
    port = free_port()

    def pg(*command: str) -> None:
        result = subprocess.run([*run_as, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{server_log}")

    try:
        pg(
            str(bindir / "initdb"),
            *("--pgdata", str(data), "--username", "trustview", "--pwfile", str(password_file)),
            *("--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C", "--no-sync"),
        )
        # Durability is not a test's concern; fsync off makes the many test-database flushes cheap.
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg(str(bindir / "pg_ctl"), "start", "--pgdata", str(data), "--log", str(log), "-w", "-o", options)
        try:
            import psycopg

            with psycopg.connect(
                host="127.0.0.1", port=port, user="trustview", password=password, dbname="postgres"
            ) as connection:
                connection.autocommit = True
                connection.execute("CREATE DATABASE trustview")
            yield f"postgres://trustview:{password}@127.0.0.1:{port}/trustview"
        finally:
            pg(str(bindir / "pg_ctl"), "stop", "--pgdata", str(data), "-m", "immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_server(log: IO[bytes] | None = None) -> Iterator[str]:
    """A real Redis on a free loopback port, persisting nothing; yields its URL (database 0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable(
            "redis-server is not installed (`make test` installs Debian's redis-server package)."
        )
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(command, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        if not _wait_for_port(port, process):
            raise RuntimeError(f"redis-server did not start on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def main(argv: list[str]) -> int:
    """Run the command after `--` with DATABASE_URL and REDIS_URL set; returns its exit status."""
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python -m tests.services -- COMMAND [ARG...]", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers, which stop the servers

    signal.signal(signal.SIGTERM, stop)
    with postgres_cluster() as database_url, redis_server() as redis_url:
        where = database_url.rsplit("@", 1)[1]  # no password in the output
        print(f"tests.services: PostgreSQL at {where}, Redis at {redis_url}", flush=True)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        env.pop("CELERY_BROKER_URL", None)
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
