"""HTTP client for MitID Erhverv certificate issuance (docs/protocol.md), behind four calls.

`issue`, `request_renewal`, `order_status` and `block` are all the portal needs from the CA; a real
endpoint that differs from the simulator is adapted here and nowhere else. Calls that act as a
certificate authenticate with it over mutual TLS: its private key is handed to OpenSSL through an
anonymous in-memory file, so the decrypted key never touches the disk.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from requests.adapters import HTTPAdapter

from .errors import TRANSIENT_CODES, MitIDError

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate as MitID Erhverv hands it over: a PKCS#12 and the password that opens it."""

    serial_number: str
    pkcs12: bytes = field(repr=False)
    password: str = field(repr=False)


@dataclass(frozen=True)
class RenewalOrder:
    """A renewal order at the CA: in progress (ask again after `retry_after` seconds) or issued."""

    order_id: str
    status: str
    retry_after: float | None = None
    issued: IssuedCertificate | None = None


@dataclass(frozen=True)
class ClientIdentity:
    """The certificate (PEM, with its chain) and private key a call authenticates with."""

    certificate_pem: bytes
    private_key: Any = field(repr=False)


class MitIDClient:
    """One environment (test or production) of MitID Erhverv."""

    def __init__(
        self,
        base_url: str,
        *,
        environment: str = "",
        ca_bundle: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.environment = environment
        self.ca_bundle = ca_bundle
        self.timeout = timeout

    # --- the four calls ---------------------------------------------------------------------------

    def issue(self, reference_number: str, pin: str, *, idempotency_key: str) -> IssuedCertificate:
        """Issue a certificate with a profile's reference number and one-time PIN."""
        body = self._call(
            "POST",
            "/v1/certificates",
            json={"reference_number": reference_number, "pin": pin},
            idempotency_key=idempotency_key,
        )
        return self._issued(body)

    def request_renewal(self, identity: ClientIdentity, *, idempotency_key: str) -> RenewalOrder:
        """Ask for a renewal of the certificate in `identity`; the answer is an order, usually in progress."""
        body, retry_after = self._call_with_retry_after(
            "POST", "/v1/renewals", json={}, identity=identity, idempotency_key=idempotency_key
        )
        return self._order(body, retry_after)

    def order_status(self, identity: ClientIdentity, order_id: str) -> RenewalOrder:
        """Where a renewal order stands; once issued it carries the new certificate."""
        body, retry_after = self._call_with_retry_after(
            "GET", f"/v1/renewals/{requests.utils.quote(order_id, safe='')}", identity=identity
        )
        return self._order(body, retry_after)

    def block(self, identity: ClientIdentity, *, idempotency_key: str, reason: str = "unspecified") -> None:
        """Block (revoke) the certificate in `identity`. Irreversible."""
        self._call(
            "POST",
            "/v1/certificates/block",
            json={"reason": reason},
            identity=identity,
            idempotency_key=idempotency_key,
        )

    # --- plumbing ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._call_with_retry_after(method, path, **kwargs)[0]

    def _call_with_retry_after(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        identity: ClientIdentity | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], float | None]:
        headers = {"Accept": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        with self._session(identity) as session:
            try:
                response = session.request(
                    method, self.base_url + path, json=json, headers=headers, timeout=self.timeout
                )
            except requests.exceptions.SSLError as exc:
                raise MitIDError(_ssl_error_code(exc), environment=self.environment) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
                # Dropped connections (also half-way through the answer) and time-outs: the CA may or may
                # not have acted, which is why every creating call carries an Idempotency-Key and can
                # simply be sent again.
                raise MitIDError("unavailable", environment=self.environment) from None
        retry_after = _retry_after(response)
        if response.status_code >= 400:
            raise self._problem(response, retry_after)
        try:
            body = response.json()
        except ValueError:
            raise MitIDError(
                "unexpected_response", status=response.status_code, environment=self.environment
            ) from None
        if not isinstance(body, dict):
            raise MitIDError("unexpected_response", status=response.status_code, environment=self.environment)
        return body, retry_after

    def _problem(self, response: requests.Response, retry_after: float | None) -> MitIDError:
        code = ""
        attempts_left = None
        with contextlib.suppress(ValueError):
            problem = response.json()
            if isinstance(problem, dict):
                code = str(problem.get("code") or "")
                if isinstance(problem.get("attempts_left"), int):
                    attempts_left = problem["attempts_left"]
        # docs/protocol.md: 429 and every 5xx are transient, whatever code (if any) the body carries; a
        # 500 with a problem body of its own is still "try again later", never the end of a renewal.
        if response.status_code == 429:
            code = "rate_limited"
        elif response.status_code >= 500 and code not in TRANSIENT_CODES:
            code = "unavailable"
        elif not code:
            code = "unexpected_response"
        return MitIDError(
            code,
            status=response.status_code,
            environment=self.environment,
            attempts_left=attempts_left,
            retry_after=retry_after,
        )

    @contextlib.contextmanager
    def _session(self, identity: ClientIdentity | None) -> Iterator[requests.Session]:
        session = requests.Session()
        session.verify = self.ca_bundle or True
        session.trust_env = False  # never send a client certificate or a PIN through an environment proxy
        if identity is not None:
            context = ssl.create_default_context(cafile=self.ca_bundle)
            _load_identity(context, identity)
            session.mount(self.base_url, _ContextAdapter(context))
        try:
            yield session
        finally:
            session.close()

    def _issued(self, body: dict[str, Any]) -> IssuedCertificate:
        try:
            return IssuedCertificate(
                serial_number=str(body["certificate"]["serial_number"]),
                pkcs12=base64.b64decode(body["pkcs12"], validate=True),
                password=str(body["pkcs12_password"]),
            )
        except (KeyError, TypeError, ValueError):
            raise MitIDError("unexpected_response", environment=self.environment) from None

    def _order(self, body: dict[str, Any], retry_after: float | None) -> RenewalOrder:
        status = body.get("status")
        order_id = body.get("order_id")
        if not isinstance(order_id, str) or status not in {"in_progress", "issued"}:
            raise MitIDError("unexpected_response", environment=self.environment)
        issued = self._issued(body) if status == "issued" else None
        return RenewalOrder(order_id=order_id, status=status, retry_after=retry_after, issued=issued)


class _ContextAdapter(HTTPAdapter):
    """Use our SSLContext (which carries the client certificate) for every connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def _load_identity(context: ssl.SSLContext, identity: ClientIdentity) -> None:
    """Give OpenSSL the certificate and key without writing the decrypted key to disk."""
    if hasattr(os, "memfd_create"):
        key_pem = identity.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.memfd_create("mitid-client-identity", os.MFD_CLOEXEC)
        try:
            os.write(descriptor, identity.certificate_pem + key_pem)
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    # No anonymous memory files (not Linux): a temporary file holding the key encrypted with a
    # one-time password, removed at once.
    import secrets

    password = secrets.token_bytes(32)
    key_pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(identity.certificate_pem + key_pem)
        handle.flush()
        context.load_cert_chain(handle.name, password=password)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from an API; the caller's own backoff applies


def _ssl_error_code(error: requests.exceptions.SSLError) -> str:
    text = str(error)
    # Our check of the server failed, or the server sent a TLS alert about our certificate.
    if "CERTIFICATE_VERIFY_FAILED" in text or "alert" in text.lower():
        return "tls_error"
    return "unavailable"  # e.g. the connection closed half-way through the handshake
