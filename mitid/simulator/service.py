"""What the service does for each call of the contract, apart from HTTP and TLS plumbing.

Handlers get an open write transaction from the server, which also keeps the Idempotency-Key record in
that same transaction: a retried request either sees the first answer or runs after it, never beside it,
so it can never make a second certificate or order.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from math import ceil
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mitid.simulator import pki
from mitid.simulator.problems import Problem
from mitid.simulator.state import (
    ENVIRONMENTS,
    MAX_PIN_ATTEMPTS,
    REFERENCE_DIGITS,
    Store,
    normalise_code,
    parse_rfc3339,
    pin_matches,
    rfc3339,
)

JSON = "application/json"


@dataclass
class Answer:
    """A successful answer: status, JSON body bytes and the headers that belong to it."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON
    replayed: bool = False  # the remembered answer to an Idempotency-Key, given again (for the log)


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or ``invalid_request``."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem("invalid_request", "The body is not JSON.") from None
    if not isinstance(document, dict):
        raise Problem("invalid_request", "The body must be a JSON object.")
    return document


def _only_fields(document: dict[str, Any], allowed: set[str]) -> None:
    """Unknown fields are refused: a client sending something the contract does not know is a bug to see."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise Problem("invalid_request", f"Unknown field {unknown[0]!r} in the body.")


class Service:
    """The simulated MitID Erhverv service for both environments."""

    def __init__(self, state_dir: Path, store: Store, http_url: str) -> None:
        self.store = store
        self.http_url = http_url
        self.authorities = {env: pki.Authority.load(state_dir, env) for env in ENVIRONMENTS}

    # Helpers ----------------------------------------------------------------------------------------

    def _validity(self, conn: sqlite3.Connection) -> timedelta:
        minutes = self.store.validity_minutes(conn)
        return pki.DEFAULT_LEAF_VALIDITY if minutes is None else timedelta(minutes=minutes)

    def _presented(self, conn: sqlite3.Connection, environment: str, client_der: bytes | None) -> sqlite3.Row:
        """The stored certificate the TLS client authenticated with, or the contract's error for it."""
        if client_der is None:
            raise Problem(
                "client_certificate_required",
                "This call needs the current certificate as TLS client certificate.",
            )
        try:
            serial = x509.load_der_x509_certificate(client_der).serial_number
        except ValueError:
            serial = -1
        row = self.store.get_certificate(conn, environment, pki.serial_hex(serial)) if serial > 0 else None
        if row is None or bytes(row["der"]) != client_der:
            raise Problem(
                "unknown_certificate",
                f"The TLS client certificate was not issued by the {environment} environment's CA.",
            )
        return row

    def _new_certificate(
        self,
        conn: sqlite3.Connection,
        environment: str,
        holder: pki.Holder,
        renewed_from: str | None,
    ) -> dict[str, Any]:
        """Issues, records and packs a certificate: the part of the answer sections 3 and 4 share."""
        authority = self.authorities[environment]
        certificate, key = pki.issue_certificate(
            authority,
            holder,
            self._validity(conn),
            self.http_url,
            now=self.store.now(conn),
            key=pki.take_pooled_key(self.store.state_dir),
        )
        serial = pki.serial_hex(certificate.serial_number)
        facts = {
            "serial_number": serial,
            "uuid": holder.uuid,
            "subject": pki.subject_string(certificate.subject),
            "not_before": rfc3339(certificate.not_valid_before_utc),
            "not_after": rfc3339(certificate.not_valid_after_utc),
        }
        self.store.add_certificate(
            conn,
            {
                "environment": environment,
                "serial": serial,
                "uuid": holder.uuid,
                "type": holder.certificate_type,
                "cvr": holder.cvr,
                "name": holder.name,
                "organisation_name": holder.organisation_name,
                "subject": facts["subject"],
                "not_before": facts["not_before"],
                "not_after": facts["not_after"],
                "der": certificate.public_bytes(serialization.Encoding.DER),
                "renewed_from": renewed_from,
            },
        )
        password = pki.new_pkcs12_password()
        return {
            "certificate": facts,
            "pkcs12": pki.pkcs12_base64(authority, certificate, key, password),
            "pkcs12_password": password,
        }

    # Section 3: issue ---------------------------------------------------------------------------------

    def issue(self, conn: sqlite3.Connection, environment: str, payload: dict[str, Any]) -> Answer:
        """Reference number and PIN become one certificate; wrong PINs count towards locking."""
        _only_fields(payload, {"reference_number", "pin"})
        reference = payload.get("reference_number")
        pin = payload.get("pin")
        if not isinstance(reference, str) or not isinstance(pin, str):
            raise Problem("invalid_request", "reference_number and pin are required strings.")
        reference = normalise_code(reference)
        if len(reference) != REFERENCE_DIGITS or not reference.isascii() or not reference.isdigit():
            raise Problem("invalid_request", "reference_number must be 12 digits.")
        if not normalise_code(pin) or len(pin) > 64:
            raise Problem("invalid_request", "pin must be a non-empty string.")

        profile = self.store.get_profile(conn, environment, reference)
        if profile is None:
            raise Problem(
                "unknown_reference",
                f"No certificate profile has this reference number in the {environment} environment.",
            )
        if profile["locked"]:
            raise _pin_locked()
        if not pin_matches(pin, bytes(profile["pin_salt"]), bytes(profile["pin_hash"])):
            failed = int(profile["failed_attempts"]) + 1
            locked = failed >= MAX_PIN_ATTEMPTS
            conn.execute(
                "UPDATE profiles SET failed_attempts = ?, locked = ? WHERE reference = ?",
                (failed, int(locked), reference),
            )
            if locked:
                raise _pin_locked()
            left = MAX_PIN_ATTEMPTS - failed
            raise Problem(
                "invalid_pin",
                f"The PIN is not right. {left} attempt{'s are' if left != 1 else ' is'} left "
                "before the profile is locked.",
                extra={"attempts_left": left},
            )
        if profile["used_serial"] is not None:
            raise Problem(
                "reference_used",
                "The reference number and PIN have already been used to issue a certificate.",
            )

        holder = pki.Holder(
            certificate_type=str(profile["type"]),
            uuid=str(uuid.uuid4()),
            name=str(profile["name"]),
            organisation_name=str(profile["organisation_name"]),
            cvr=str(profile["cvr"]),
        )
        document = self._new_certificate(conn, environment, holder, renewed_from=None)
        conn.execute(
            "UPDATE profiles SET used_serial = ? WHERE reference = ?",
            (document["certificate"]["serial_number"], reference),
        )
        return Answer(201, json_bytes(document))

    # Section 4: renew -------------------------------------------------------------------------------

    def request_renewal(
        self,
        conn: sqlite3.Connection,
        environment: str,
        client_der: bytes | None,
        payload: dict[str, Any],
        base_url: str,
    ) -> Answer:
        """Opens a renewal order for the presented certificate, or returns the one still in progress."""
        _only_fields(payload, set())
        row = self._presented(conn, environment, client_der)
        if row["blocked_at"] is not None:
            raise Problem("certificate_blocked", "The certificate is blocked and cannot be renewed.")
        if parse_rfc3339(str(row["not_after"])).timestamp() < self.store.timestamp(conn):
            raise Problem(
                "certificate_expired", "The certificate has expired: a new certificate must be issued."
            )
        if not self.store.renewal_enabled(conn, str(row["cvr"])):
            raise Problem(
                "renewal_not_enabled",
                "The organisation has not been enabled for renewal; ask Digst at mitiderhverv@digst.dk.",
            )
        serial = str(row["serial"])
        open_order = self.store.open_order(conn, environment, serial)
        now = self.store.timestamp(conn)
        if open_order is not None:
            order_id, ready_at = str(open_order["order_id"]), float(open_order["ready_at"])
            return _in_progress(200, order_id, ready_at, now, base_url)
        order_id = str(uuid.uuid4())
        ready_at = self.store.create_order(conn, order_id, environment, serial)
        return _in_progress(202, order_id, ready_at, now, base_url)

    def order_status(
        self, environment: str, order_id: str, client_der: bytes | None, base_url: str
    ) -> Answer:
        """In progress until the delay has passed; then the new certificate, made exactly once."""
        with self.store.read() as conn:
            old = self._presented(conn, environment, client_der)
            order = self._order(conn, environment, order_id, old)
            if order["answer"] is not None:
                return Answer(200, bytes(order["answer"]))
            now = self.store.timestamp(conn)
            if float(order["ready_at"]) > now:
                return _in_progress(200, order_id, float(order["ready_at"]), now, base_url, location=False)
        with self.store.write() as conn:
            order = self._order(conn, environment, order_id, old)
            if order["answer"] is not None:  # another request completed it meanwhile
                return Answer(200, bytes(order["answer"]))
            holder = pki.Holder(
                certificate_type=str(old["type"]),
                uuid=str(old["uuid"]),
                name=str(old["name"]),
                organisation_name=str(old["organisation_name"]),
                cvr=str(old["cvr"]),
            )
            issued = self._new_certificate(conn, environment, holder, renewed_from=str(old["serial"]))
            body = json_bytes({"order_id": order_id, "status": "issued", **issued})
            self.store.complete_order(conn, order_id, issued["certificate"]["serial_number"], body)
            return Answer(200, body)

    def _order(
        self, conn: sqlite3.Connection, environment: str, order_id: str, old: sqlite3.Row
    ) -> sqlite3.Row:
        order = self.store.get_order(conn, environment, order_id)
        if order is None or order["old_serial"] != old["serial"]:
            raise Problem("order_not_found", "There is no such order for this certificate.")
        return order

    # Section 5: block -------------------------------------------------------------------------------

    def block(
        self, conn: sqlite3.Connection, environment: str, client_der: bytes | None, payload: dict[str, Any]
    ) -> Answer:
        """Blocks the presented certificate; blocking it again changes nothing and answers the same."""
        _only_fields(payload, {"reason"})
        reason = payload.get("reason", "unspecified")
        if reason not in pki.REASONS:
            raise Problem("invalid_request", f"reason must be one of {', '.join(pki.REASONS)}.")
        row = self._presented(conn, environment, client_der)
        row = self.store.block_certificate(conn, environment, str(row["serial"]), reason)
        return Answer(200, json_bytes(blocked_json(row)))

    # Section 6: revocation status -------------------------------------------------------------------

    def ocsp(self, environment: str, request_der: bytes) -> bytes:
        serial = pki.ocsp_serial(request_der)
        row = None
        with self.store.read() as conn:
            now = self.store.now(conn)
            if serial is not None and serial > 0:
                row = self.store.get_certificate(conn, environment, pki.serial_hex(serial))
        revocation = _revocation(row) if row is not None else None
        return pki.ocsp_response(
            self.authorities[environment], request_der, row is not None, revocation, now=now
        )

    def crl(self, environment: str) -> bytes:
        with self.store.read() as conn:
            rows = self.store.revoked_certificates(conn, environment)
            now = self.store.now(conn)
        revoked = []
        for row in rows:
            revocation = _revocation(row)
            assert revocation is not None
            revoked.append((int(str(row["serial"]), 16), revocation))
        return pki.crl_der(self.authorities[environment], revoked, now=now)


def blocked_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"serial_number": str(row["serial"]), "status": "blocked", "blocked_at": str(row["blocked_at"])}


def _revocation(row: sqlite3.Row) -> pki.Revocation | None:
    if row["blocked_at"] is None:
        return None
    return pki.Revocation(parse_rfc3339(str(row["blocked_at"])), str(row["block_reason"]))


def _pin_locked() -> Problem:
    return Problem(
        "pin_locked",
        "Too many wrong PINs: the profile's one-time code is locked; make a new one in MitID Erhverv.",
    )


def _in_progress(
    status: int, order_id: str, ready_at: float, now: float, base_url: str, location: bool = True
) -> Answer:
    """An in-progress order, with Retry-After saying when it is ready (at least 1 second)."""
    headers = [("Retry-After", str(max(1, ceil(ready_at - now))))]
    if location:
        headers.insert(0, ("Location", f"{base_url}/v1/renewals/{order_id}"))
    return Answer(status, json_bytes({"order_id": order_id, "status": "in_progress"}), headers)
