"""Every process the tests start, and the handles to talk to them: the MitID Erhverv simulator, the
portal (web, Celery worker and beat), PostgreSQL, Redis and an SMTP server.

`python -m tests.support.processes -- COMMAND...` runs COMMAND with DATABASE_URL and REDIS_URL pointing
at a fresh PostgreSQL cluster and a fresh Redis: `make test` runs the tests that use the database that
way (scripts/test.sh), then the whole suite on the embedded SQLite default.

Nothing here needs a system service: the PostgreSQL cluster lives in a temporary directory (initdb,
pg_ctl from Debian's /usr/lib/postgresql/VERSION/bin) with fsync off. PostgreSQL refuses to run as
root, so as root the cluster runs as the `postgres` user that Debian's postgresql package creates.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import pwd
import re
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mitid.simulator.state import PIN_COSTS
from trustview.run import WORKER_OPTIONS

from .openssl import der_to_pem

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60


class Unavailable(RuntimeError):
    """A server program is not installed (`make test` installs it; see scripts/system-packages.sh)."""


# Plumbing -----------------------------------------------------------------------------------------------


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


def wait_for_http(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float = START_TIMEOUT_SECONDS,
    read_timeout: float = 1,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=(1, read_timeout))
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not come up: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)


def wait_for_log(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the process has written `text` to its log (e.g. Celery's "ready")."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{log.name} never said {text!r}: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


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
            stop(process)


@contextlib.contextmanager
def running_together(
    commands: dict[str, list[str]], env: dict[str, str], log_dir: Path, timeout: float = 15
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """`running` for several processes, each logging to LOG_DIR/NAME.log; at the end all are asked to stop
    (SIGTERM) at once and given `timeout` seconds in all, so their shutdowns overlap."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            with (log_dir / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _unavailable(error: Unavailable) -> NoReturn:
    """A missing server program fails the run in CI (where `make test` installs it) and skips elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(str(error))
    pytest.skip(str(error))


# The MitID Erhverv simulator ----------------------------------------------------------------------------


def operate(state_dir: Path, *args: str) -> dict[str, Any]:
    """Runs an operator command that must succeed and returns the JSON it printed.

    It runs `main` of mitid/simulator/__main__.py, what `python -m mitid.simulator ARGS` runs, in this
    process: operator commands act on the state directory, not through the server, so the result is
    the same, without starting a Python for each of the suite's few hundred commands. The command line
    as a process (exit status, stderr, locale) is tested in tests/simulator/test_cli.py.
    """
    from mitid.simulator.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([*args, "--state-dir", str(state_dir)])
        except SystemExit as exit:
            status = exit.code
    assert status == 0, f"mitid.simulator {' '.join(args)} exited with {status}: {err.getvalue()}"
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def simulator_keys(directory: Path) -> Path:
    """A state directory holding only the simulator's CA and TLS keys, made once for the whole run, and a
    pool of leaf keys (`_leaf_key_pool`).

    RSA key generation is the slow part of a new state directory, so the keys are made once (by an
    operator command, as on first use) and copied into each simulator's own state (`fresh_state`).
    Under pytest-xdist every worker asks; the first makes them under a lock, the others wait for it.
    """
    seed = directory / "simulator-keys"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "simulator-keys.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (seed / "ready").exists():
            shutil.rmtree(seed, ignore_errors=True)
            operate(seed, "status")
            for part in ("simulator.sqlite3", "simulator.sqlite3-wal", "simulator.sqlite3-shm"):
                (seed / part).unlink(missing_ok=True)
            shutil.copytree(_leaf_key_pool(), seed / "key-pool")
            (seed / "ready").touch()
    return seed


# Leaf keys each simulator may use before it makes its own: the most any one simulator of the suite issues.
LEAF_KEY_POOL_SIZE = 40


def _leaf_key_pool() -> Path:
    """RSA-3072 leaf keys made ahead of need by the simulator's `make-key-pool`, once per machine (they
    depend on no code): each simulator's state gets a copy and takes each key once, so the suite's few
    hundred certificates do not each spend a quarter of a second of CPU on key generation. Certificates
    of different simulators may share a key; those of one simulator, which one portal sees, never do."""
    directory = _template_directory()
    pool = directory / f"simulator-key-pool-{LEAF_KEY_POOL_SIZE}"
    with _template_lock(directory, "key-pool.lock"):
        if not (pool / "ready").exists():
            shutil.rmtree(pool, ignore_errors=True)
            operate(pool, "make-key-pool", "--count", str(LEAF_KEY_POOL_SIZE))
            (pool / "ready").touch()
    return pool / "key-pool"


def fresh_state(seed: Path, directory: Path) -> Path:
    """A new state directory sharing the seed's keys (and a copy of its pool of leaf keys) but nothing
    else."""
    state = directory / "state"
    state.mkdir(parents=True)
    for part in ("ca", "tls", "key-pool"):
        shutil.copytree(seed / part, state / part)
    # The cheapest PIN hashing the simulator offers (1 ms instead of 50 ms): the suite makes a few hundred
    # profiles, and checks each PIN at least once. tests/simulator/test_pins.py uses the default.
    operate(state, "set-pin-cost", "--cost", str(PIN_COSTS[0]))
    return state


@dataclass
class Issued:
    """A certificate the simulator issued, with its key written to files for requests' ``cert=``."""

    answer: dict[str, Any]
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]
    cert_file: Path
    key_file: Path
    p12_file: Path

    @property
    def serial(self) -> str:
        return str(self.answer["certificate"]["serial_number"])

    @property
    def password(self) -> str:
        return str(self.answer["pkcs12_password"])

    @property
    def tls(self) -> tuple[str, str]:
        return str(self.cert_file), str(self.key_file)


def unpack(answer: dict[str, Any], directory: Path) -> Issued:
    """Opens the PKCS#12 of an issue or renewal answer and writes PEM files beside it."""
    data = base64.b64decode(answer["pkcs12"])
    key, certificate, chain = pkcs12.load_key_and_certificates(data, answer["pkcs12_password"].encode())
    assert isinstance(key, rsa.RSAPrivateKey) and certificate is not None
    serial = answer["certificate"]["serial_number"]
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file, p12_file = (directory / f"{serial}.{ext}" for ext in ("pem", "key", "p12"))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    p12_file.write_bytes(data)
    return Issued(answer, certificate, key, list(chain), cert_file, key_file, p12_file)


class Simulator:
    """One ``python -m mitid.simulator serve`` process on free ports, and helpers to talk to it: its
    operator commands, its HTTPS API (mutual TLS) and its plain-HTTP OCSP/CRL/CA server."""

    def __init__(self, state_dir: Path, *serve_options: str) -> None:
        self.state_dir = state_dir
        self.serve_options = serve_options
        self.log_file = state_dir.parent / f"{state_dir.name}.log"
        self.files = state_dir.parent / f"{state_dir.name}-files"
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}

    def start(self, port: int = 0, http_port: int = 0) -> None:
        command = [
            *(sys.executable, "-m", "mitid.simulator", "serve"),
            *("--port", str(port), "--http-port", str(http_port)),
        ]
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
                [*command, "--state-dir", str(self.state_dir), *self.serve_options],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_TIMEOUT_SECONDS):
                self.process.kill()
                pytest.fail(f"The simulator did not start: {self.log()}")
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"The simulator exited: {self.log()}")
        self.ready = json.loads(line)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None
        return code

    def restart(self) -> None:
        """Start again after `stop`, on the same ports (the portal and the certificates it issued keep
        their addresses), as a service that was down comes back."""
        api, http = urlsplit(self.api).port, urlsplit(self.http).port
        assert api is not None and http is not None
        self.start(api, http)

    @property
    def api(self) -> str:
        return str(self.ready["api"])

    @property
    def http(self) -> str:
        return str(self.ready["http"])

    @property
    def tls_ca(self) -> str:
        return str(self.ready["tls_ca"])

    def base_url(self, environment: str = "test") -> str:
        return f"{self.api}/{environment}"

    def ca_file(self, environment: str, which: str) -> str:
        return str(self.state_dir / "ca" / environment / f"{which}.pem")

    def ca_certificate(self, environment: str, which: str) -> bytes:
        """The environment's root or issuing CA certificate as PEM (fetched as a relying party would)."""
        der = requests.get(f"{self.http}/{environment}/ca/{which}.cer", timeout=10).content
        return der_to_pem(der)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    # Operator commands (docs/protocol.md section 8) -------------------------------------------------

    def cli(self, *args: str) -> dict[str, Any]:
        """Runs an operator command against the running simulator's state; returns its JSON."""
        return operate(self.state_dir, *args)

    def create_profile(
        self,
        *,
        cvr: str = "12345678",
        name: str = "Lønsystem",
        organisation_name: str = "Eksempel A/S",
        certificate_type: str = "system",
        environment: str = "test",
    ) -> dict[str, Any]:
        return self.cli(
            "create-profile",
            *("--cvr", cvr, "--name", name, "--organisation-name", organisation_name),
            *("--type", certificate_type, "--environment", environment),
        )

    @contextlib.contextmanager
    def clock(self, offset_seconds: float) -> Iterator[None]:
        """The simulator's clock moved by `offset_seconds` during the block (`set-clock`): with -20,
        what it issues was issued 20 seconds ago, so a test need not wait 20 seconds for it to age."""
        self.cli("set-clock", f"--offset={offset_seconds}")
        try:
            yield
        finally:
            self.cli("set-clock", "--offset=0")

    # The HTTPS API -----------------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """Trusts the simulator's TLS CA; no trust_env, so REQUESTS_CA_BUNDLE cannot override that."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.tls_ca
        return session

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "new",
        cert: tuple[str, str] | None = None,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> requests.Response:
        """POST to the API; ``key="new"`` sends a fresh Idempotency-Key, None sends none."""
        headers = {"Content-Type": content_type}
        if key is not None:
            headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "new" else key
        payload = data if data is not None else json.dumps(body if body is not None else {}).encode()
        with self.session() as session:
            return session.post(self.api + path, data=payload, headers=headers, cert=cert, timeout=30)

    def get(self, path_or_url: str, *, cert: tuple[str, str] | None = None) -> requests.Response:
        url = path_or_url if path_or_url.startswith("https://") else self.api + path_or_url
        with self.session() as session:
            return session.get(url, cert=cert, timeout=30)

    def issue(self, environment: str = "test", **profile: str) -> Issued:
        """A profile made by the operator, issued through the API."""
        made = self.create_profile(environment=environment, **profile)
        response = self.post(
            f"/{environment}/v1/certificates",
            {"reference_number": made["reference_number"], "pin": made["pin"]},
        )
        assert response.status_code == 201, response.text
        return unpack(response.json(), self.files)


@contextlib.contextmanager
def running_simulator(state_dir: Path, *serve_options: str) -> Iterator[Simulator]:
    """A simulator process for the duration of the block, on the state in `state_dir`."""
    simulator = Simulator(state_dir, *serve_options)
    simulator.start()
    try:
        yield simulator
    finally:
        if simulator.process is not None:
            simulator.stop()


# PostgreSQL and Redis ------------------------------------------------------------------------------------


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
    with restartable_postgres() as (url, _restart):
        yield url


def _run_as_postgres() -> list[str]:
    """The prefix that runs a PostgreSQL program: as root, as Debian's `postgres` user (PostgreSQL refuses
    to run as root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as "
            "(Debian's postgresql package creates one)."
        ) from None
    return ["runuser", "-u", "postgres", "--"]


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _pg(run_as: list[str], log: Path, *command: str) -> None:
    result = subprocess.run([*run_as, *command], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}{server_log}")


# Durability is not a test's concern; fsync off makes the many test-database flushes cheap.
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
)


def _postgres_template() -> tuple[Path, str]:
    """A stopped PostgreSQL data directory whose `trustview` database `manage.py migrate` has brought up
    to date, and the password of its `trustview` user; made once per version of the portal's code and
    PostgreSQL (shared by pytest-xdist's workers and concurrent runs, under a lock).

    `initdb` and migrating a new cluster cost about ten seconds; every cluster the tests start is a copy
    of this directory instead, so it starts in a second with its database ready.
    """
    bindir = postgres_bindir()
    run_as = _run_as_postgres()
    directory = _template_directory()
    template = directory / f"postgres-{bindir.parent.name}-{_code_version()}"
    with _template_lock(directory, "postgres.lock"):
        if not (template / "ready").exists():
            _remove_stale_templates(directory, "postgres-*")
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir()
            _give_to_postgres(template)
            password = secrets.token_urlsafe(18)
            password_file = template / "password"
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            _give_to_postgres(password_file)
            data, log = template / "data", template / "postgres.log"
            _pg(
                run_as,
                log,
                str(bindir / "initdb"),
                *("--pgdata", str(data), "--username", "trustview", "--pwfile", str(password_file)),
                *("--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C", "--no-sync"),
            )
            port = free_port()
            options = f"-p {port} -k {template} {_SERVER_OPTIONS}"
            _pg(
                run_as,
                log,
                str(bindir / "pg_ctl"),
                "start",
                "--pgdata",
                str(data),
                "--log",
                str(log),
                "-w",
                "-o",
                options,
            )
            try:
                import psycopg

                with psycopg.connect(
                    host="127.0.0.1", port=port, user="trustview", password=password, dbname="postgres"
                ) as connection:
                    connection.autocommit = True
                    connection.execute("CREATE DATABASE trustview")
                env = {
                    k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")
                }
                env.update(
                    DATABASE_URL=f"postgres://trustview:{password}@127.0.0.1:{port}/trustview",
                    TRUSTVIEW_VAR_DIR=str(directory),
                )
                manage(env, "migrate", "--noinput")
            finally:
                # A clean shutdown, so that each copy starts without recovery.
                _pg(run_as, log, str(bindir / "pg_ctl"), "stop", "--pgdata", str(data), "-m", "fast", "-w")
            (template / "ready").touch()
        os.utime(template)
    return template, (template / "password").read_text().strip()


@contextlib.contextmanager
def restartable_postgres() -> Iterator[tuple[str, Callable[[], None]]]:
    """`postgres_cluster`, and a function that restarts the server (fast shutdown, as a service manager
    restarts it: open connections are cut) on the same port."""
    bindir = postgres_bindir()
    run_as = _run_as_postgres()
    template, password = _postgres_template()
    root = Path(tempfile.mkdtemp(prefix="trustview-pg-"))
    _give_to_postgres(root)
    data, log = root / "data", root / "postgres.log"
    port = free_port()
    options = f"-p {port} -k {root} {_SERVER_OPTIONS}"

    def pg(*command: str) -> None:
        _pg(run_as, log, *command)

    try:
        # A copy keeps the owner and the 0700 mode PostgreSQL demands of its data directory.
        subprocess.run(["cp", "-a", str(template / "data"), str(data)], check=True)
        pg(str(bindir / "pg_ctl"), "start", "--pgdata", str(data), "--log", str(log), "-w", "-o", options)
        try:
            url = f"postgres://trustview:{password}@127.0.0.1:{port}/trustview"
            _MIGRATED.add(url)

            def restart() -> None:
                pg(
                    str(bindir / "pg_ctl"),
                    "restart",
                    "--pgdata",
                    str(data),
                    "--log",
                    str(log),
                    "-m",
                    "fast",
                    "-w",
                    "-o",
                    options,
                )

            yield url, restart
        finally:
            _MIGRATED.discard(url)
            pg(str(bindir / "pg_ctl"), "stop", "--pgdata", str(data), "-m", "immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for a portal's processes; yields its URL.

    On the PostgreSQL run of `make test` it is a new database on that run's cluster, a copy of the run's
    migrated database; otherwise a throw-away cluster is started for it, a copy of a migrated one. Either
    way `migrate` knows it has nothing to do.
    """
    run_url = os.environ.get("DATABASE_URL", "")
    if not run_url.startswith(("postgres://", "postgresql://")):
        with contextlib.ExitStack() as stack:
            try:
                url = stack.enter_context(postgres_cluster())
            except Unavailable as error:
                _unavailable(error)
            yield url
        return
    import psycopg

    parts = urlsplit(run_url)
    name = f"trustview_portal_{secrets.token_hex(4)}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    migrated = os.environ.get(MIGRATED_DATABASE_URL) == run_url
    template = f' TEMPLATE "{parts.path.lstrip("/")}"' if migrated else ""
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"{template}')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    if migrated:
        _MIGRATED.add(url)
    try:
        yield url
    finally:
        _MIGRATED.discard(url)
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_process(log: IO[bytes] | None = None) -> Iterator[str]:
    """A real Redis on a free loopback port, persisting nothing; yields its URL (database 0)."""
    with restartable_redis(log) as (url, _restart):
        yield url


@contextlib.contextmanager
def restartable_redis(log: IO[bytes] | None = None) -> Iterator[tuple[str, Callable[[], None]]]:
    """`redis_process`, and a function that restarts it on the same port. It persists nothing, so a
    restart loses every queued message, as a Redis without persistence that restarts does."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable(
            "redis-server is not installed (`make test` installs Debian's redis-server package)."
        )
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen(command, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        processes.append(process)
        if not _wait_for_port(port, process):
            raise RuntimeError(f"redis-server did not start on port {port}")

    def restart() -> None:
        stop(processes[-1])
        start()

    try:
        start()
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        stop(processes[-1])


@contextlib.contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """A real Redis of its own for a test, logging to LOG_DIR/redis.log; yields its URL."""
    with (log_dir / "redis.log").open("wb") as log, contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(redis_process(log))
        except Unavailable as error:
            _unavailable(error)
        yield url


# SMTP ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd, in a thread of this process) on a free loopback port, handing each
    message to `handler` (an aiosmtpd handler); yields its port."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


# The portal ---------------------------------------------------------------------------------------------


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


# Databases that are fresh copies of a migrated template (their URLs): `migrate` has nothing to do there.
_MIGRATED: set[str] = set()
# Set by `main` for the command it runs: the URL of its database, a copy of the migrated template, which a
# test database or a portal's database may copy in turn (tests/conftest.py, `postgres_database`).
MIGRATED_DATABASE_URL = "TRUSTVIEW_TEST_MIGRATED_DATABASE_URL"


def _code_version() -> str:
    """A digest of the portal's code that migrations depend on: each app with migrations, and the project
    (not the tests or the virtualenv)."""
    code = hashlib.sha256()
    packages = {path.parent.parent.name for path in REPO.glob("*/migrations/__init__.py")} | {"trustview"}
    for path in sorted(REPO.glob("*/**/*.py")):
        if path.parts[len(REPO.parts)] in packages:
            code.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return code.hexdigest()[:16]


def _template_directory() -> Path:
    directory = Path(tempfile.gettempdir()) / "trustview-test-databases"
    directory.mkdir(exist_ok=True)
    return directory


@contextlib.contextmanager
def _template_lock(directory: Path, name: str) -> Iterator[None]:
    """One lock per kind of template, so that the kinds are made at the same time by different workers."""
    with (directory / name).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_stale_templates(directory: Path, pattern: str) -> None:
    """Templates of older code, unused for a day, go (one per change of the code would pile up). Each use
    of a template touches it (sets its modification time)."""
    for old in directory.glob(pattern):
        if time.time() - old.stat().st_mtime > 86400:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def migrated_sqlite_template() -> Path:
    """An SQLite database that `manage.py migrate` has brought up to date, made once per version of the
    portal's code (shared by pytest-xdist's workers and by runs at the same time, under a lock).

    Migrating a new SQLite database costs a Python start and a few seconds of commits; the suite starts a
    dozen portals, so each starts from a copy of this one instead.
    """
    directory = _template_directory()
    template = directory / f"migrated-{_code_version()}.sqlite3"
    with _template_lock(directory, "sqlite.lock"):
        if not template.exists():
            _remove_stale_templates(directory, "migrated-*.sqlite3")
            partial = template.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
            env.update(DATABASE_URL=f"sqlite:///{partial}", TRUSTVIEW_VAR_DIR=str(directory))
            manage(env, "migrate", "--noinput")
            partial.rename(template)
        os.utime(template)
    return template


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` for a portal's database, as `make run` does, where it has something to do: a new
    SQLite database starts as a copy of the migrated template, and a PostgreSQL cluster of
    `postgres_database` or `restartable_postgres` as a copy of a migrated one (`_postgres_template`); both
    templates were made by this command on this code, so running it again would only cost a Python start."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite://")).exists():
        shutil.copyfile(migrated_sqlite_template(), url.removeprefix("sqlite://"))
        return
    if url in _MIGRATED:
        return
    manage(env, "migrate", "--noinput")


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "trustview", *args]


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
    migrate(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    worker = celery("worker", *WORKER_OPTIONS, "--concurrency", str(workers))
    beat = celery("beat", "--loglevel", "INFO")
    superuser = [sys.executable, "manage.py", "ensure_superuser"]
    # All at once, as the compose file starts them: each spends its first seconds loading Django.
    with running_together(
        {"web": web, "worker": worker, "beat": beat, "ensure-superuser": superuser}, env, var_dir
    ) as processes:
        if processes["ensure-superuser"].wait(timeout=START_TIMEOUT_SECONDS) != 0:
            pytest.fail("ensure_superuser failed: " + (var_dir / "ensure-superuser.log").read_text()[-3000:])
        wait_for_http(url + "/accounts/login/", processes["web"], var_dir / "web.log")
        # Up means all three: a test's first renewal must not wait for the worker to start.
        wait_for_log(var_dir / "worker.log", " ready.", processes["worker"])
        wait_for_log(var_dir / "beat.log", "beat: Starting...", processes["beat"])
        yield RunningPortal(url, env)


# `make test`'s PostgreSQL + Redis run --------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Run the command after `--` with DATABASE_URL and REDIS_URL set; returns its exit status."""
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python -m tests.support.processes -- COMMAND [ARG...]", file=sys.stderr)
        return 2

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers, which stop the servers

    signal.signal(signal.SIGTERM, stop_on_signal)
    with postgres_cluster() as database_url, redis_process() as redis_url:
        where = database_url.rsplit("@", 1)[1]  # no password in the output
        print(f"tests.support.processes: PostgreSQL at {where}, Redis at {redis_url}", flush=True)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            MIGRATED_DATABASE_URL: database_url,
            "REDIS_URL": redis_url,
        }
        env.pop("CELERY_BROKER_URL", None)
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
