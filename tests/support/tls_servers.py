"""Real TLS servers on loopback for the endpoint scanner's tests: OpenSSL's `s_server` for direct TLS, and
small SMTP, IMAP and LDAP servers with STARTTLS on Python's ssl module (in a thread)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.pki import Issued

READY_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_pem(directory: Path, name: str, *issued: Issued) -> Path:
    path = directory / name
    path.write_bytes(b"".join(i.pem for i in issued))
    return path


def _wait_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"openssl s_server stopped: {process.stderr.read().decode() if process.stderr else ''}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def s_server(
    directory: Path,
    leaf: Issued,
    chain: list[Issued] = (),
    port: int | None = None,  # type: ignore[assignment]
) -> Iterator[int]:
    """`openssl s_server` on 127.0.0.1 serving `leaf` (and `chain` after it); yields the port."""
    port = port or free_port()
    tag = leaf.certificate.serial_number
    cert = write_pem(directory, f"leaf-{tag}.pem", leaf)
    key = directory / f"leaf-{tag}.key"
    key.write_bytes(leaf.key_pem())
    args = [
        "openssl",
        "s_server",
        "-accept",
        f"127.0.0.1:{port}",
        "-cert",
        str(cert),
        "-key",
        str(key),
        "-rev",
    ]
    if chain:
        args += ["-cert_chain", str(write_pem(directory, f"chain-{tag}.pem", *chain))]
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_listening(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _smtp(conn: socket.socket) -> bool:
    conn.sendall(b"220 mail.example ESMTP ready\r\n")
    conn.recv(1024)  # EHLO
    conn.sendall(b"250-mail.example\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n")
    if not conn.recv(1024).upper().startswith(b"STARTTLS"):
        return False
    conn.sendall(b"220 Go ahead\r\n")
    return True


def _imap(conn: socket.socket) -> bool:
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
    tag, _, command = conn.recv(1024).partition(b" ")
    if not command.upper().startswith(b"STARTTLS"):
        return False
    conn.sendall(tag + b" OK Begin TLS negotiation now\r\n")
    return True


def _ldap(conn: socket.socket) -> bool:
    request = conn.recv(1024)
    if b"1.3.6.1.4.1.1466.20037" not in request:
        return False
    # ExtendedResponse, message id 1: resultCode success, empty matchedDN and diagnosticMessage.
    conn.sendall(bytes([0x30, 0x0C, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]))
    return True


DIALOGUES = {"smtp": _smtp, "imap": _imap, "ldap": _ldap}


@contextlib.contextmanager
def starttls_server(leaf: Issued, directory: Path, protocol: str = "smtp") -> Iterator[int]:
    """A server that speaks the protocol's STARTTLS (SMTP, IMAP or LDAP) and then shakes hands with `leaf`;
    one thread, loopback. Anything else than the STARTTLS command ends the connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert = write_pem(directory, f"{protocol}.pem", leaf)
    key = directory / f"{protocol}.key"
    key.write_bytes(leaf.key_pem())
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    if not DIALOGUES[protocol](conn):
                        continue
                    with context.wrap_socket(conn, server_side=True) as tls, contextlib.suppress(OSError):
                        tls.recv(1)
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts the connection (the kernel's backlog) but never says anything: a handshake
    to it times out."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
