"""Look at what one TLS endpoint serves: a TCP connection, the STARTTLS command where the protocol needs
one (SMTP, IMAP, LDAP), a TLS handshake, and nothing else. No request is sent after the handshake, so
there is no answer and no redirect to follow.

The address comes from a person, so the scanner guards where it goes (server-side request forgery):
the name is resolved once, every address it resolves to is checked against the blocked networks
(TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS: link-local, cloud metadata, multicast...), and the connection goes
to that very address, so a name that resolves differently a moment later (DNS rebinding) changes
nothing. Connecting and the handshake each have a short deadline, and every read before TLS is bounded.

This module touches no database: it runs in threads (services.scan_many) and returns an Observation.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils.translation import gettext_noop

from certificates.networks import is_blocked

from .choices import ErrorCode, Protocol

# Most bytes read from a server before TLS starts (a greeting, an EHLO answer, an LDAP response).
MAX_PLAINTEXT_BYTES = 8 * 1024
# Most certificates kept from what a server sends (a real chain has a handful).
MAX_CHAIN = 10
# LDAP StartTLS: ExtendedRequest (message id 1) with the StartTLS OID 1.3.6.1.4.1.1466.20037 (RFC 4511).
_LDAP_OID = b"1.3.6.1.4.1.1466.20037"
LDAP_STARTTLS = bytes([0x30, 0x1D, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16]) + _LDAP_OID

ERROR_SENTENCES = {
    ErrorCode.UNRESOLVED: gettext_noop("The name %(host)s could not be resolved."),
    ErrorCode.BLOCKED: gettext_noop(
        "%(host)s resolves to %(address)s, an address the scanner may not reach "
        "(TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS)."
    ),
    ErrorCode.REFUSED: gettext_noop("%(address)s refused the connection on port %(port)s."),
    ErrorCode.TIMEOUT: gettext_noop("%(address)s port %(port)s did not answer in time (%(seconds)s s)."),
    ErrorCode.UNREACHABLE: gettext_noop("%(address)s port %(port)s cannot be reached: %(reason)s."),
    ErrorCode.STARTTLS: gettext_noop("The server did not accept STARTTLS: %(reason)s."),
    ErrorCode.HANDSHAKE: gettext_noop("The TLS handshake failed: %(reason)s."),
}


class ScanError(Exception):
    """Why a scan saw no certificate: a stable code, and the fields of its sentence (ERROR_SENTENCES)."""

    def __init__(self, code: ErrorCode, **detail: str) -> None:
        super().__init__(code.value)
        self.code = code
        self.detail = detail

    @property
    def message(self) -> str:
        """The sentence in English (the catalogue translates it where it is shown)."""
        return ERROR_SENTENCES[self.code] % self.detail


@dataclass
class Observation:
    """What one scan saw: the served certificates (leaf first, as DER) and the TLS version, or an error."""

    address: str = ""
    tls_version: str = ""
    served: list[x509.Certificate] = field(default_factory=list)
    error: ScanError | None = None
    seconds: float = 0.0

    @property
    def leaf(self) -> x509.Certificate | None:
        return self.served[0] if self.served else None


@dataclass(frozen=True)
class Target:
    """Where to look: host name or address, port, the name to send as SNI (and to match), protocol."""

    host: str
    port: int
    sni: str
    protocol: str

    @property
    def expected_name(self) -> str:
        return self.sni or self.host


def resolve(host: str, port: int) -> str:
    """The one address to connect to: the first the name resolves to. Raises ScanError when the name
    does not resolve, or when any address it resolves to is blocked (a name that points at a metadata
    address among others is not one to scan)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ScanError(ErrorCode.UNRESOLVED, host=host) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ScanError(ErrorCode.UNRESOLVED, host=host)
    for address in addresses:
        if is_blocked(address):
            raise ScanError(ErrorCode.BLOCKED, host=host, address=address)
    return addresses[0]


def scan(target: Target) -> Observation:
    """Connect, negotiate STARTTLS when the protocol needs it, shake hands, and record what was served.
    Never raises for anything the network does: the Observation carries the error."""
    started = time.monotonic()
    observation = Observation()
    try:
        observation.address = resolve(target.host, target.port)
        _handshake(target, observation)
    except ScanError as error:
        observation.error = error
    observation.seconds = round(time.monotonic() - started, 3)
    return observation


def _connect(address: str, port: int) -> socket.socket:
    seconds = settings.TRUSTVIEW_ENDPOINT_CONNECT_TIMEOUT_SECONDS
    try:
        return socket.create_connection((address, port), timeout=seconds)
    except ConnectionRefusedError:
        raise ScanError(ErrorCode.REFUSED, address=address, port=str(port)) from None
    except TimeoutError:
        raise ScanError(ErrorCode.TIMEOUT, address=address, port=str(port), seconds=f"{seconds:g}") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ScanError(ErrorCode.UNREACHABLE, address=address, port=str(port), reason=reason) from None


def _handshake(target: Target, observation: Observation) -> None:
    address, port = observation.address, target.port
    seconds = settings.TRUSTVIEW_ENDPOINT_HANDSHAKE_TIMEOUT_SECONDS
    with _connect(address, port) as raw:
        raw.settimeout(seconds)
        try:
            _starttls(raw, target.protocol, time.monotonic() + seconds)
            raw.settimeout(seconds)  # the handshake has its own deadline (CPython's ssl module)
            context = _context()
            server_name = _server_name(target)
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                observation.tls_version = tls.version() or ""
                observation.served = _served(tls)
        except TimeoutError:
            raise ScanError(
                ErrorCode.TIMEOUT, address=address, port=str(port), seconds=f"{seconds:g}"
            ) from None
        except ssl.SSLError as error:
            raise ScanError(ErrorCode.HANDSHAKE, reason=_ssl_reason(error)) from None
        except ConnectionError as error:
            reason = error.strerror or type(error).__name__
            raise ScanError(ErrorCode.HANDSHAKE, reason=reason) from None
    if not observation.served:
        raise ScanError(ErrorCode.HANDSHAKE, reason="the server sent no certificate")


def _context() -> ssl.SSLContext:
    """A client context that accepts any certificate: the portal judges the chain itself (against its own
    trust store), and must see a broken or expired certificate to report it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _server_name(target: Target) -> str | None:
    """The SNI name: the one given, else the host when it is a name (SNI never carries an address)."""
    name = target.sni or target.host
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None


def _served(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the server sent, leaf first, as it sent them (unverified: judged afterwards)."""
    # Public from Python 3.13; the same method of the underlying object since 3.10.
    getter = getattr(tls, "get_unverified_chain", None) or getattr(tls._sslobj, "get_unverified_chain", None)  # type: ignore[attr-defined]
    served: list[bytes] = []
    if getter is not None:
        for item in (getter() or [])[:MAX_CHAIN]:
            served.append(item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not served:
        leaf = tls.getpeercert(binary_form=True)
        served = [leaf] if leaf else []
    certificates = []
    for der in served:
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break  # what cannot be read ends the chain as far as the portal can judge it
    return certificates


def _ssl_reason(error: ssl.SSLError) -> str:
    return str(error.reason or error.strerror or type(error).__name__).replace("_", " ").lower()


# --- STARTTLS ----------------------------------------------------------------------------------------


def _starttls(sock: socket.socket, protocol: str, deadline: float) -> None:
    """Ask the server to start TLS on a plain connection (RFC 3207 SMTP, RFC 3501 IMAP, RFC 4511 LDAP),
    the whole exchange before `deadline` (time.monotonic)."""
    if protocol == Protocol.SMTP:
        _expect(_read_reply(sock, _smtp_done, deadline), b"220", "greeting")
        sock.sendall(b"EHLO trustview.invalid\r\n")  # SMTP offers STARTTLS only after EHLO
        _expect(_read_reply(sock, _smtp_done, deadline), b"250", "EHLO")
        sock.sendall(b"STARTTLS\r\n")
        _expect(_read_reply(sock, _smtp_done, deadline), b"220", "STARTTLS")
    elif protocol == Protocol.IMAP:
        _expect(_read_reply(sock, _line_done, deadline), b"* OK", "greeting")
        sock.sendall(b"a1 STARTTLS\r\n")
        _expect(_read_reply(sock, _tagged_done, deadline), b"a1 OK", "STARTTLS", anywhere=True)
    elif protocol == Protocol.LDAP:
        sock.sendall(LDAP_STARTTLS)
        answer = _read_reply(sock, _ber_done, deadline)
        # ExtendedResponse (0x78) whose resultCode (ENUMERATED 0x0a) is success (0).
        at = answer.find(b"\x78")
        if at < 0 or b"\x0a\x01\x00" not in answer[at : at + 8]:
            raise ScanError(ErrorCode.STARTTLS, reason="the LDAP server refused StartTLS")


def _read_reply(sock: socket.socket, done: object, deadline: float) -> bytes:
    """One reply, at most MAX_PLAINTEXT_BYTES, complete before `deadline`: a socket timeout alone bounds
    each recv, so a server sending a byte now and then would otherwise hold the scan for hours."""
    data = b""
    while not done(data):  # type: ignore[operator]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(1024)
        if not chunk:
            raise ScanError(ErrorCode.STARTTLS, reason="the server closed the connection")
        data += chunk
        if len(data) > MAX_PLAINTEXT_BYTES:
            raise ScanError(ErrorCode.STARTTLS, reason="the server's answer is too long")
    return data


def _smtp_done(data: bytes) -> bool:
    """A complete SMTP reply: its last line has a space after the code ("250 ok", not "250-...")."""
    lines = data.split(b"\r\n")
    return len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" "


def _line_done(data: bytes) -> bool:
    return b"\r\n" in data


def _tagged_done(data: bytes) -> bool:
    return any(line.startswith(b"a1 ") for line in data.split(b"\r\n")[:-1])


def _ber_done(data: bytes) -> bool:
    """A whole BER message (short or long length form) has arrived."""
    if len(data) < 2:
        return False
    length, header = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count > 4 or len(data) < 2 + count:
            return len(data) >= 2 + count
        length, header = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    return len(data) >= header + length


def _expect(answer: bytes, start: bytes, step: str, anywhere: bool = False) -> None:
    lines = answer.split(b"\r\n")
    ok = any(line.startswith(start) for line in lines) if anywhere else answer.startswith(start)
    if not ok:
        first = lines[0][:120].decode("ascii", "replace")
        raise ScanError(ErrorCode.STARTTLS, reason=f"{step}: {first}")


# --- judging a leaf ----------------------------------------------------------------------------------


def name_matches(certificate: x509.Certificate, name: str) -> bool:
    """Whether `certificate` is for `name` (RFC 6125): its DNS names (one wildcard label at the left) or
    IP addresses; the common name only when it has no subjectAltName at all."""
    name = name.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        if ip is not None:
            return False
        return any(
            _dns_match(str(attr.value), name)
            for attr in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    return any(_dns_match(pattern, name) for pattern in san.get_values_for_type(x509.DNSName))


def _dns_match(pattern: str, name: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:] and "." in rest
    return pattern == name
