"""The simulator's persistent state: one SQLite database in the state directory.

The running server and operator commands started from a shell are separate processes acting on the same
state, so everything lives in SQLite (WAL mode, so readers never wait for a writer) and every change runs
in a ``BEGIN IMMEDIATE`` transaction behind a process-wide lock: two writers, in one process or two, never
interleave. Nothing here imports ``cryptography``, which keeps operator commands quick to start.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("test", "production")
CERTIFICATE_TYPES = ("organisation", "system", "employee")

DATABASE_NAME = "simulator.sqlite3"
STATE_ENV_VAR = "MITID_SIMULATOR_STATE"
DEFAULT_STATE_DIR = Path("var") / "simulator"

DEFAULT_RENEWAL_DELAY_SECONDS = 5.0
MAX_PIN_ATTEMPTS = 5
# scrypt's work factor for PINs, as log2 of its N: 14 costs about 50 ms of CPU a PIN (at creation and at
# each check). `set-pin-cost` changes it for profiles created from then on; a test suite that issues
# hundreds of certificates lowers it, as Django test suites lower their password hasher's.
DEFAULT_PIN_COST = 14
# Above 14 hashlib.scrypt needs more than its default 32 MiB (maxmem) and refuses: 14 is also the most.
PIN_COSTS = range(10, 15)
# Idempotency keys are kept at least 24 hours (contract); a week leaves room for slow retries.
IDEMPOTENCY_RETENTION_SECONDS = 7 * 24 * 3600

# No 0/O or 1/I: a PIN read aloud or from paper is typed right the first time.
PIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PIN_LENGTH = 8
REFERENCE_DIGITS = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    reference TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    type TEXT NOT NULL,
    cvr TEXT NOT NULL,
    name TEXT NOT NULL,
    organisation_name TEXT NOT NULL,
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0,
    used_serial TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    environment TEXT NOT NULL,
    serial TEXT NOT NULL,
    uuid TEXT NOT NULL,
    type TEXT NOT NULL,
    cvr TEXT NOT NULL,
    name TEXT NOT NULL,
    organisation_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    der BLOB NOT NULL,
    renewed_from TEXT,
    blocked_at TEXT,
    block_reason TEXT,
    PRIMARY KEY (environment, serial)
);
CREATE TABLE IF NOT EXISTS renewal_enabled (
    cvr TEXT PRIMARY KEY,
    enabled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    old_serial TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ready_at REAL NOT NULL,
    new_serial TEXT,
    answer BLOB
);
CREATE INDEX IF NOT EXISTS orders_by_certificate ON orders (environment, old_serial);
CREATE TABLE IF NOT EXISTS idempotency (
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (environment, key)
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    code TEXT,
    retry_after INTEGER,
    seconds REAL,
    remaining INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


CA_FILES = ("root.pem", "root.key", "issuing.pem", "issuing.key")
TLS_FILES = ("ca.pem", "ca.key", "server.pem", "server.key")


def ca_dir(state_dir: Path, environment: str) -> Path:
    """Where an environment's root and issuing CA keys and certificates live."""
    return state_dir / "ca" / environment


def tls_dir(state_dir: Path) -> Path:
    """The TLS CA (``ca.pem``, what clients trust) and the server's certificate and key."""
    return state_dir / "tls"


def material_present(state_dir: Path) -> bool:
    """Whether every CA and TLS file exists: cheap, and needs no ``cryptography``, so operator commands
    only import the PKI code on the state directory's first use."""
    paths = [ca_dir(state_dir, env) / name for env in ENVIRONMENTS for name in CA_FILES]
    paths += [tls_dir(state_dir) / name for name in TLS_FILES]
    return all(path.is_file() for path in paths)


def utc_now(offset_seconds: float = 0.0) -> datetime:
    """The current time in UTC, to the second (X.509 and the contract's RFC 3339 times have seconds),
    on a clock moved by ``offset_seconds`` (the operator's ``set-clock``; see :meth:`Store.now`)."""
    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    """The contract's time format: RFC 3339 in UTC with a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """Reads back a time written by :func:`rfc3339`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def resolve_state_dir(explicit: str | None) -> Path:
    """``--state-dir``, else ``$MITID_SIMULATOR_STATE``, else ``var/simulator`` in the current directory."""
    chosen = explicit or os.environ.get(STATE_ENV_VAR) or str(DEFAULT_STATE_DIR)
    return Path(chosen).expanduser().resolve()


def normalise_code(value: str) -> str:
    """Reference numbers and PINs are compared without spaces and dashes, case-insensitively."""
    return "".join(ch for ch in value if ch not in " -").upper()


def new_reference_number() -> str:
    """Twelve random digits; shown to people as ``NNNN NNNN NNNN``."""
    return f"{secrets.randbelow(10**REFERENCE_DIGITS):0{REFERENCE_DIGITS}d}"


def format_reference_number(digits: str) -> str:
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def new_pin() -> str:
    """Eight characters from the unambiguous alphabet; shown to people as ``XXXX-XXXX``."""
    return "".join(secrets.choice(PIN_ALPHABET) for _ in range(PIN_LENGTH))


def format_pin(pin: str) -> str:
    return f"{pin[:4]}-{pin[4:]}"


def hash_pin(pin: str, salt: bytes, cost: int = DEFAULT_PIN_COST) -> bytes:
    """scrypt, so a copied database does not give away PINs that are still unused. The first byte says
    the cost, so a PIN still matches after the operator has changed the cost for new profiles."""
    digest = hashlib.scrypt(normalise_code(pin).encode("utf-8"), salt=salt, n=2**cost, r=8, p=1, dklen=32)
    return bytes([cost]) + digest


def pin_matches(pin: str, salt: bytes, expected: bytes) -> bool:
    # 32 bytes: a digest stored before the cost was (always DEFAULT_PIN_COST then).
    if len(expected) == 32:
        cost, digest = DEFAULT_PIN_COST, expected
    elif len(expected) == 33:
        cost, digest = expected[0], expected[1:]
    else:
        return False
    if cost not in PIN_COSTS:
        return False
    return hmac.compare_digest(hash_pin(pin, salt, cost)[1:], digest)


@dataclass(frozen=True)
class Fault:
    """One pending fault injected by the operator; ``remaining`` calls will still meet it."""

    id: int
    kind: str
    code: str | None
    retry_after: int | None
    seconds: float | None
    remaining: int
    path: str

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.id, "kind": self.kind, "remaining": self.remaining}
        if self.code is not None:
            document["code"] = self.code
        if self.retry_after is not None:
            document["retry_after"] = self.retry_after
        if self.seconds is not None:
            document["seconds"] = self.seconds
        document["path"] = self.path or None
        return document


class Store:
    """Access to the state database; one instance per process, shared by its threads."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / DATABASE_NAME
        self._write_lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    def _create_schema(self) -> None:
        conn = self._connect()
        try:
            # journal_mode is persistent in the file; setting it again is a no-op. Two processes making a
            # new state at once both switch it, and SQLite then says "database is locked" at once rather
            # than after the busy timeout: try again for a while.
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as error:
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with self._write_lock:
                conn.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("COMMIT")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        """A fresh connection in autocommit mode: transactions are begun explicitly."""
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads; WAL gives each statement a consistent snapshot without waiting."""
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def write(self, commit_on: tuple[type[BaseException], ...] = ()) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised with every other writer in this process and in others.

        Exceptions of the ``commit_on`` types still commit: a wrong PIN answers with an error, but the
        failed attempt it counted must stay counted.
        """
        with self._write_lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except commit_on:
                    conn.execute("COMMIT")
                    raise
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()

    # Settings ---------------------------------------------------------------------------------------

    def get_setting(self, conn: sqlite3.Connection, name: str) -> str | None:
        row = conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row["value"])

    def set_setting(self, conn: sqlite3.Connection, name: str, value: str | None) -> None:
        if value is None:
            conn.execute("DELETE FROM settings WHERE name = ?", (name,))
        else:
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def validity_minutes(self, conn: sqlite3.Connection) -> float | None:
        """The operator's validity override in minutes, or None for the contract's three years."""
        value = self.get_setting(conn, "validity_minutes")
        return None if value is None else float(value)

    def pin_cost(self, conn: sqlite3.Connection) -> int:
        value = self.get_setting(conn, "pin_cost")
        if value is not None and value.isdigit() and int(value) in PIN_COSTS:
            return int(value)
        return DEFAULT_PIN_COST

    def renewal_delay_seconds(self, conn: sqlite3.Connection) -> float:
        value = self.get_setting(conn, "renewal_delay_seconds")
        return DEFAULT_RENEWAL_DELAY_SECONDS if value is None else float(value)

    # The simulator's clock: the machine's, moved by the operator's offset (``set-clock``), so a test
    # can have a certificate issued "20 seconds ago" instead of waiting 20 seconds. Everything the
    # simulator dates (certificates, orders, blocks, OCSP and CRL answers) reads the time here; only log
    # lines keep the machine's time.

    def clock_offset_seconds(self, conn: sqlite3.Connection) -> float:
        value = self.get_setting(conn, "clock_offset_seconds")
        return 0.0 if value is None else float(value)

    def timestamp(self, conn: sqlite3.Connection) -> float:
        """Seconds since the epoch on the simulator's clock."""
        return time.time() + self.clock_offset_seconds(conn)

    def now(self, conn: sqlite3.Connection) -> datetime:
        """The simulator's time in UTC, to the second."""
        return utc_now(self.clock_offset_seconds(conn))

    def renewal_enabled(self, conn: sqlite3.Connection, cvr: str) -> bool:
        row = conn.execute("SELECT 1 FROM renewal_enabled WHERE cvr = ?", (cvr,)).fetchone()
        return row is not None

    def set_renewal_enabled(self, conn: sqlite3.Connection, cvr: str, enabled: bool) -> None:
        if enabled:
            conn.execute(
                "INSERT OR IGNORE INTO renewal_enabled (cvr, enabled_at) VALUES (?, ?)",
                (cvr, rfc3339(self.now(conn))),
            )
        else:
            conn.execute("DELETE FROM renewal_enabled WHERE cvr = ?", (cvr,))

    # Profiles ---------------------------------------------------------------------------------------

    def create_profile(
        self,
        conn: sqlite3.Connection,
        *,
        environment: str,
        certificate_type: str,
        cvr: str,
        name: str,
        organisation_name: str,
    ) -> tuple[str, str]:
        """Stores a new profile; returns its reference number and PIN (digits and characters only)."""
        pin = new_pin()
        salt = secrets.token_bytes(16)
        while True:
            reference = new_reference_number()
            exists = conn.execute("SELECT 1 FROM profiles WHERE reference = ?", (reference,)).fetchone()
            if exists is None:
                break
        conn.execute(
            "INSERT INTO profiles (reference, environment, type, cvr, name, organisation_name, "
            "pin_salt, pin_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                reference,
                environment,
                certificate_type,
                cvr,
                name,
                organisation_name,
                salt,
                hash_pin(pin, salt, self.pin_cost(conn)),
                rfc3339(self.now(conn)),
            ),
        )
        return reference, pin

    def get_profile(self, conn: sqlite3.Connection, environment: str, reference: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM profiles WHERE environment = ? AND reference = ?", (environment, reference)
        ).fetchone()

    # Certificates -----------------------------------------------------------------------------------

    def add_certificate(self, conn: sqlite3.Connection, values: dict[str, Any]) -> None:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        conn.execute(f"INSERT INTO certificates ({columns}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    def get_certificate(self, conn: sqlite3.Connection, environment: str, serial: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM certificates WHERE environment = ? AND serial = ?", (environment, serial)
        ).fetchone()

    def find_certificate_any_environment(self, conn: sqlite3.Connection, serial: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM certificates WHERE serial = ? ORDER BY environment", (serial,)
        ).fetchone()

    def block_certificate(
        self, conn: sqlite3.Connection, environment: str, serial: str, reason: str
    ) -> sqlite3.Row:
        """Blocks once: a second block keeps the first time and reason (blocking is irreversible)."""
        conn.execute(
            "UPDATE certificates SET blocked_at = ?, block_reason = ? "
            "WHERE environment = ? AND serial = ? AND blocked_at IS NULL",
            (rfc3339(self.now(conn)), reason, environment, serial),
        )
        row = self.get_certificate(conn, environment, serial)
        assert row is not None
        return row

    def revoked_certificates(self, conn: sqlite3.Connection, environment: str) -> list[sqlite3.Row]:
        return list(
            conn.execute(
                "SELECT serial, blocked_at, block_reason FROM certificates "
                "WHERE environment = ? AND blocked_at IS NOT NULL ORDER BY blocked_at, serial",
                (environment,),
            )
        )

    # Orders -----------------------------------------------------------------------------------------

    def open_order(self, conn: sqlite3.Connection, environment: str, old_serial: str) -> sqlite3.Row | None:
        """An order for this certificate that is still in progress (not yet ready), if any."""
        return conn.execute(
            "SELECT * FROM orders WHERE environment = ? AND old_serial = ? AND answer IS NULL "
            "AND ready_at > ? ORDER BY ready_at DESC",
            (environment, old_serial, self.timestamp(conn)),
        ).fetchone()

    def create_order(
        self, conn: sqlite3.Connection, order_id: str, environment: str, old_serial: str
    ) -> float:
        ready_at = self.timestamp(conn) + self.renewal_delay_seconds(conn)
        conn.execute(
            "INSERT INTO orders (order_id, environment, old_serial, created_at, ready_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (order_id, environment, old_serial, rfc3339(self.now(conn)), ready_at),
        )
        return ready_at

    def get_order(self, conn: sqlite3.Connection, environment: str, order_id: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM orders WHERE environment = ? AND order_id = ?", (environment, order_id)
        ).fetchone()

    def complete_order(self, conn: sqlite3.Connection, order_id: str, new_serial: str, answer: bytes) -> None:
        conn.execute(
            "UPDATE orders SET new_serial = ?, answer = ? WHERE order_id = ?", (new_serial, answer, order_id)
        )

    # Idempotency ------------------------------------------------------------------------------------

    def remembered_answer(self, conn: sqlite3.Connection, environment: str, key: str) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM idempotency WHERE environment = ? AND key = ? AND created_at > ?",
            (environment, key, self.timestamp(conn) - IDEMPOTENCY_RETENTION_SECONDS),
        ).fetchone()

    def remember_answer(
        self,
        conn: sqlite3.Connection,
        environment: str,
        key: str,
        fingerprint: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        now = self.timestamp(conn)
        conn.execute("DELETE FROM idempotency WHERE created_at <= ?", (now - IDEMPOTENCY_RETENTION_SECONDS,))
        conn.execute(
            "INSERT OR REPLACE INTO idempotency (environment, key, fingerprint, status, headers, body, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (environment, key, fingerprint, status, json.dumps(headers), body, now),
        )

    # Faults -----------------------------------------------------------------------------------------

    def add_fault(
        self,
        conn: sqlite3.Connection,
        *,
        kind: str,
        count: int,
        path: str,
        code: str | None = None,
        retry_after: int | None = None,
        seconds: float | None = None,
    ) -> Fault:
        cursor = conn.execute(
            "INSERT INTO faults (kind, code, retry_after, seconds, remaining, path, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, code, retry_after, seconds, count, path, rfc3339(self.now(conn))),
        )
        assert cursor.lastrowid is not None
        return Fault(cursor.lastrowid, kind, code, retry_after, seconds, count, path)

    def list_faults(self, conn: sqlite3.Connection) -> list[Fault]:
        return [_fault(row) for row in conn.execute("SELECT * FROM faults ORDER BY id")]

    def clear_faults(self, conn: sqlite3.Connection) -> int:
        return conn.execute("DELETE FROM faults").rowcount

    def take_fault(self, path: str) -> Fault | None:
        """Uses one count of the oldest pending fault matching ``path`` (after the environment), if any."""
        with self.read() as conn:
            if conn.execute("SELECT 1 FROM faults LIMIT 1").fetchone() is None:
                return None  # the common case answers without taking the write lock
        with self.write() as conn:
            for fault in self.list_faults(conn):
                if path.startswith(fault.path):
                    if fault.remaining <= 1:
                        conn.execute("DELETE FROM faults WHERE id = ?", (fault.id,))
                    else:
                        conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (fault.id,))
                    return fault
        return None

    # Status -----------------------------------------------------------------------------------------

    def status(self, conn: sqlite3.Connection) -> dict[str, Any]:
        """Counts per environment and the operator's settings, for the ``status`` command."""
        now = self.timestamp(conn)
        today = rfc3339(self.now(conn))
        environments: dict[str, Any] = {}
        for environment in ENVIRONMENTS:

            def count(sql: str, *args: object, environment: str = environment) -> int:
                return int(conn.execute(sql, (environment, *args)).fetchone()[0])

            environments[environment] = {
                "profiles": count("SELECT count(*) FROM profiles WHERE environment = ?"),
                "profiles_unused": count(
                    "SELECT count(*) FROM profiles "
                    "WHERE environment = ? AND used_serial IS NULL AND locked = 0"
                ),
                "profiles_locked": count(
                    "SELECT count(*) FROM profiles WHERE environment = ? AND locked = 1"
                ),
                "certificates": count("SELECT count(*) FROM certificates WHERE environment = ?"),
                "certificates_blocked": count(
                    "SELECT count(*) FROM certificates WHERE environment = ? AND blocked_at IS NOT NULL"
                ),
                "certificates_expired": count(
                    "SELECT count(*) FROM certificates WHERE environment = ? AND not_after < ?", today
                ),
                "orders": count("SELECT count(*) FROM orders WHERE environment = ?"),
                "orders_in_progress": count(
                    "SELECT count(*) FROM orders WHERE environment = ? AND answer IS NULL AND ready_at > ?",
                    now,
                ),
            }
        minutes = self.validity_minutes(conn)
        return {
            "environments": environments,
            "settings": {
                "validity": "3 years" if minutes is None else f"{minutes:g} minutes",
                "validity_minutes": minutes,
                "renewal_delay_seconds": self.renewal_delay_seconds(conn),
                "pin_cost": self.pin_cost(conn),
                "clock_offset_seconds": self.clock_offset_seconds(conn),
                "renewal_enabled_cvrs": [
                    str(row["cvr"]) for row in conn.execute("SELECT cvr FROM renewal_enabled ORDER BY cvr")
                ],
            },
            "faults": [fault.as_json() for fault in self.list_faults(conn)],
        }


def _fault(row: sqlite3.Row) -> Fault:
    return Fault(
        id=int(row["id"]),
        kind=str(row["kind"]),
        code=row["code"],
        retry_after=row["retry_after"],
        seconds=row["seconds"],
        remaining=int(row["remaining"]),
        path=str(row["path"]),
    )
