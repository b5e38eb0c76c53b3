"""The two listeners of ``serve``: the HTTPS API (mutual TLS) and the plain-HTTP OCSP/CRL/CA server.

Both are standard-library ``ThreadingHTTPServer``s in one process. The TLS handshake runs in the
connection's own thread, so a slow or broken client never holds up the accept loop.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives import serialization

from mitid.simulator import pki
from mitid.simulator.problems import RETRY_AFTER_CODES, Problem
from mitid.simulator.service import JSON, Answer, Service, json_bytes, parse_json_object
from mitid.simulator.state import ENVIRONMENTS, Store, tls_dir

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: an expired client certificate still completes the handshake, so
# the API can answer certificate_expired instead of a bare TLS alert. The API checks time itself.
X509_V_FLAG_NO_CHECK_TIME = 0x200000
HANDSHAKE_TIMEOUT_SECONDS = 15.0
IDLE_TIMEOUT_SECONDS = 60.0
MAX_BODY_BYTES = 64 * 1024
PROBLEM_JSON = "application/problem+json"
# Fault answers for invalid_pin need the member clients read; one wrong attempt is the natural story.
FAULT_ATTEMPTS_LEFT = 4


def log(line: str) -> None:
    """One line on stderr with a UTC timestamp. Never given bodies, PINs or passwords."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sys.stderr.write(f"{stamp} {line}\n")
    sys.stderr.flush()


class _Dropped(Exception):
    """A ``fault drop`` met this call: close the connection without any answer."""


def _url_host(host: str) -> str:
    """The host as it goes in a URL; a wildcard bind is reached locally through the loopback."""
    if host in ("", "0.0.0.0"):  # noqa: S104
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Server(ThreadingHTTPServer):
    """Threads that do not block shutdown, and no reverse DNS lookup of the bind address at start."""

    daemon_threads = True
    block_on_close = False
    name = "server"
    service: Service  # set by serve() once the HTTP listener's port (and so its URL) is known

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = _address_family(address[0])
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes and vanished clients are routine: one line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError | socket.timeout):
            log(f"connection from {client_address[0]} ended: {error}")
        else:
            log(f"error with connection from {client_address[0]}: {traceback.format_exc().strip()}")


class _Handler(BaseHTTPRequestHandler):
    """Shared parts of both listeners: HTTP/1.1 keep-alive, body reading, answers, one log line each."""

    protocol_version = "HTTP/1.1"
    server_version = "MitIDErhvervSimulator/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by the line ``_finish`` writes, which also carries the problem code."""

    def log_message(self, format: str, *args: Any) -> None:
        log(f"{self.client_address[0]} {format % args}")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Problem("invalid_request", "Send the body with Content-Length, not chunked.")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise Problem("invalid_request", f"Content-Length must be 0 to {MAX_BODY_BYTES}.")
        return self.rfile.read(length)

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in answer.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _finish(self, method: str, path: str, answer: Answer, code: str) -> None:
        self._send(answer)
        log(f"{self.server.name} {method} {path} {answer.status} {code}")

    @property
    def _path(self) -> str:
        return urlsplit(self.path).path


def problem_answer(problem: Problem) -> Answer:
    headers = []
    retry_after = problem.retry_after
    if retry_after is None and problem.code in RETRY_AFTER_CODES:
        retry_after = 1
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return Answer(problem.status, problem.body(), headers, PROBLEM_JSON)


class ApiHandler(_Handler):
    """The contract's HTTPS API for both environments: ``/{environment}/v1/...``."""

    server: ApiServer

    def setup(self) -> None:
        # The listening socket does not handshake on accept; this thread does, with its own deadline.
        self.request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        path = self._path
        try:
            body = self._read_body()
            answer = self._route(method, path, body)
            code = "replay" if answer.replayed else "-"
        except _Dropped:
            log(f"{self.server.name} {method} {path} dropped (fault)")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            return
        except Problem as problem:
            answer, code = problem_answer(problem), problem.code
        except Exception:
            log(f"{self.server.name} {method} {path} failed: {traceback.format_exc().strip()}")
            crash = Problem("internal_error", "The simulator failed; see its log.")
            answer, code = problem_answer(crash), crash.code
        self._finish(method, path, answer, code)

    def _client_der(self) -> bytes | None:
        der = self.request.getpeercert(binary_form=True)
        return bytes(der) if der else None

    def _base_url(self, environment: str) -> str:
        host = self.headers.get("Host") or f"{_url_host(self.server.server_name)}:{self.server.server_port}"
        return f"https://{host}/{environment}"

    def _route(self, method: str, path: str, body: bytes) -> Answer:
        if path == "/health":
            _allow(method, "GET")
            return Answer(200, json_bytes({"status": "ok"}))
        parts = path.split("/", 2)
        if len(parts) < 3 or parts[1] not in ENVIRONMENTS:
            raise Problem("not_found", "No such resource.")
        environment, sub_path = parts[1], "/" + parts[2]
        self._apply_fault(sub_path)
        service = self.server.service
        base_url = self._base_url(environment)
        client_der = self._client_der()
        if sub_path == "/v1/certificates":
            _allow(method, "POST")
            return self._post(
                environment, path, body, client_der, lambda conn, data: service.issue(conn, environment, data)
            )
        if sub_path == "/v1/certificates/block":
            _allow(method, "POST")
            return self._post(
                environment,
                path,
                body,
                client_der,
                lambda conn, data: service.block(conn, environment, client_der, data),
            )
        if sub_path == "/v1/renewals":
            _allow(method, "POST")
            return self._post(
                environment,
                path,
                body,
                client_der,
                lambda conn, data: service.request_renewal(conn, environment, client_der, data, base_url),
            )
        order_id = sub_path.removeprefix("/v1/renewals/")
        if order_id != sub_path and order_id and "/" not in order_id:
            _allow(method, "GET")
            return service.order_status(environment, order_id, client_der, base_url)
        raise Problem("not_found", "No such resource.")

    def _apply_fault(self, sub_path: str) -> None:
        fault = self.server.store.take_fault(sub_path)
        if fault is None:
            return
        if fault.kind == "slow":
            time.sleep(fault.seconds or 0.0)
        elif fault.kind == "drop":
            raise _Dropped
        elif fault.kind == "error":
            assert fault.code is not None
            extra = {"attempts_left": FAULT_ATTEMPTS_LEFT} if fault.code == "invalid_pin" else {}
            raise Problem(
                fault.code, "Answer injected by the simulator's operator.", extra, fault.retry_after
            )

    def _post(
        self,
        environment: str,
        path: str,
        body: bytes,
        client_der: bytes | None,
        handler: Callable[[Any, dict[str, Any]], Answer],
    ) -> Answer:
        """Idempotency-Key handling around a creating call, in the same transaction as the call itself."""
        key = self.headers.get("Idempotency-Key")
        if key is None:
            raise Problem("idempotency_key_required", "A POST needs an Idempotency-Key header.")
        if not 1 <= len(key) <= 200 or not all(" " <= ch <= "~" for ch in key):
            raise Problem("invalid_request", "Idempotency-Key must be 1 to 200 printable ASCII characters.")
        fingerprint = _fingerprint("POST", path, body, client_der)
        store = self.server.store
        with store.write(commit_on=(Problem,)) as conn:
            remembered = store.remembered_answer(conn, environment, key)
            if remembered is not None:
                if remembered["fingerprint"] != fingerprint:
                    raise Problem(
                        "idempotency_key_reused", "This Idempotency-Key was used for a different request."
                    )
                headers = [(str(name), str(value)) for name, value in json.loads(remembered["headers"])]
                return Answer(int(remembered["status"]), bytes(remembered["body"]), headers, replayed=True)
            media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if media_type != JSON:
                raise Problem("invalid_request", "The body must be sent as application/json.")
            answer = handler(conn, parse_json_object(body))
            store.remember_answer(
                conn, environment, key, fingerprint, answer.status, answer.headers, answer.body
            )
            return answer


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise Problem("method_not_allowed", f"Use {allowed} here.")


def _fingerprint(method: str, path: str, body: bytes, client_der: bytes | None) -> str:
    """SHA-256 over method, path, body and TLS client certificate, each length-prefixed."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body, client_der or b""):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class ApiServer(_Server):
    """The HTTPS listener; every accepted connection is TLS, with an optional client certificate."""

    name = "api"

    def __init__(
        self, address: tuple[str, int], service: Service, store: Store, context: ssl.SSLContext
    ) -> None:
        self.store = store
        self.service = service
        super().__init__(address, ApiHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


class RevocationHandler(_Handler):
    """Plain HTTP, as real PKIs serve it: OCSP, the CRL and the CA certificates of each environment."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        path = self._path
        try:
            body = self._read_body()
        except Problem:
            self._finish(method, path, Answer(400, b"bad request\n", content_type="text/plain"), "-")
            return
        try:
            answer = self._route("GET" if method == "HEAD" else method, path, body)
        except Exception:
            log(f"{self.server.name} {method} {path} failed: {traceback.format_exc().strip()}")
            answer = Answer(500, b"internal error\n", content_type="text/plain")
        self._finish(method, path, answer, "-")

    def _route(self, method: str, path: str, body: bytes) -> Answer:
        service = self.server.service
        parts = path.split("/", 2)
        if len(parts) < 3 or parts[1] not in ENVIRONMENTS:
            return Answer(404, b"not found\n", content_type="text/plain")
        environment, rest = parts[1], parts[2]
        authority = service.authorities[environment]
        if method == "POST" and rest == "ocsp":
            return Answer(200, service.ocsp(environment, body), content_type="application/ocsp-response")
        if method == "GET" and rest.startswith("ocsp/"):
            encoded = unquote(rest.removeprefix("ocsp/"))
            try:
                request_der = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                request_der = b""
            return Answer(
                200, service.ocsp(environment, request_der), content_type="application/ocsp-response"
            )
        if method == "GET" and rest == "crl/issuing.crl":
            return Answer(200, service.crl(environment), content_type="application/pkix-crl")
        if method == "GET" and rest in ("ca/issuing.cer", "ca/root.cer"):
            certificate = authority.issuing if rest == "ca/issuing.cer" else authority.root
            return Answer(
                200,
                certificate.public_bytes(serialization.Encoding.DER),
                content_type="application/pkix-cert",
            )
        return Answer(404, b"not found\n", content_type="text/plain")


class RevocationServer(_Server):
    name = "http"

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, RevocationHandler)


def tls_context(state_dir: Path) -> ssl.SSLContext:
    """TLS 1.2+ server context; client certificates optional and trusted from both environments."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    directory = tls_dir(state_dir)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=pki.client_trust_pem(state_dir))
    context.verify_flags = ssl.VerifyFlags(context.verify_flags | X509_V_FLAG_NO_CHECK_TIME)
    return context


def serve(state_dir: Path, host: str, port: int, http_port: int, public_http_url: str | None) -> int:
    """Runs both listeners until SIGTERM or SIGINT; prints one JSON line with the addresses when ready."""
    pki.ensure_material(state_dir)
    store = Store(state_dir)
    # The HTTP listener binds first: with --http-port 0 its real port goes into certificates' URLs.
    http_server = RevocationServer((host, http_port))
    http_url = public_http_url or f"http://{_url_host(host)}:{http_server.server_port}"
    service = Service(state_dir, store, http_url.rstrip("/"))
    http_server.service = service
    api_server = ApiServer((host, port), service, store, tls_context(state_dir))

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        for server in (api_server, http_server)
    ]
    for thread in threads:
        thread.start()
    ready = {
        "api": f"https://{_url_host(host)}:{api_server.server_port}",
        "http": f"http://{_url_host(host)}:{http_server.server_port}",
        "public_http_url": http_url,
        "tls_ca": str(tls_dir(state_dir) / "ca.pem"),
        "state_dir": str(state_dir),
        "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    log(f"serving api on {ready['api']} and http on {ready['http']}")
    while not stop.wait(0.5):
        pass
    log("stopping")
    for server in (api_server, http_server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=5)
    return 0
