"""The contract's error codes (docs/protocol.md section 2), shared by the server and the fault commands.

One table keeps the HTTP status of each code in a single place, so an injected fault answers exactly
like the real error would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROBLEM_TYPE_BASE = "https://trustview.invalid/problems/"


@dataclass(frozen=True)
class ProblemKind:
    """The fixed part of one error code: its status and a human title."""

    status: int
    title: str


# The codes of the contract's table, in its order.
CONTRACT_CODES: dict[str, ProblemKind] = {
    "invalid_request": ProblemKind(400, "Invalid request"),
    "idempotency_key_required": ProblemKind(400, "Idempotency-Key required"),
    "idempotency_key_reused": ProblemKind(422, "Idempotency-Key reused"),
    "invalid_pin": ProblemKind(422, "Wrong PIN"),
    "pin_locked": ProblemKind(423, "PIN locked"),
    "unknown_reference": ProblemKind(404, "Unknown reference number"),
    "reference_used": ProblemKind(409, "Reference number already used"),
    "client_certificate_required": ProblemKind(401, "Client certificate required"),
    "unknown_certificate": ProblemKind(403, "Unknown certificate"),
    "renewal_not_enabled": ProblemKind(403, "Renewal not enabled"),
    "certificate_blocked": ProblemKind(409, "Certificate blocked"),
    "certificate_expired": ProblemKind(409, "Certificate expired"),
    "order_not_found": ProblemKind(404, "Order not found"),
    "rate_limited": ProblemKind(429, "Too many requests"),
    "unavailable": ProblemKind(503, "Service unavailable"),
}

# Answers outside the contract's table (routing and crashes); clients read them as unexpected.
EXTRA_CODES: dict[str, ProblemKind] = {
    "not_found": ProblemKind(404, "Not found"),
    "method_not_allowed": ProblemKind(405, "Method not allowed"),
    "internal_error": ProblemKind(500, "Internal error"),
}

# Codes that always carry Retry-After (contract: every 429 and 503).
RETRY_AFTER_CODES = frozenset({"rate_limited", "unavailable"})


@dataclass
class Problem(Exception):
    """An RFC 9457 problem answer; raised by handlers and turned into the HTTP response by the server."""

    code: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    @property
    def kind(self) -> ProblemKind:
        """Status and title for the code; unknown codes are a programming error."""
        return CONTRACT_CODES.get(self.code) or EXTRA_CODES[self.code]

    @property
    def status(self) -> int:
        return self.kind.status

    def body(self) -> bytes:
        """The problem+json document, with the code's extension members (e.g. attempts_left)."""
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
            "code": self.code,
        }
        document.update(self.extra)
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
