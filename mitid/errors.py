"""Errors from MitID Erhverv, each with a stable code and a sentence a person can act on.

The sentences are ours, chosen by code, never copied from what was sent: no PIN, password or key can end
up in an error message, a log line or a page.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from certificates.choices import Environment
from certificates.issuers import IssuerError

# Codes the client treats as "try again later" (docs/protocol.md section 2).
TRANSIENT_CODES = frozenset({"rate_limited", "unavailable"})

SENTENCES = {
    "invalid_request": _("MitID Erhverv did not accept the request. Check the reference number and PIN."),
    "invalid_pin": _("The PIN is not right."),
    "pin_locked": (
        _(
            "The PIN is locked after too many wrong attempts. Make a new PIN for the certificate profile "
            "in MitID Erhverv and try again."
        )
    ),
    "unknown_reference": (
        _(
            "No certificate profile has this reference number in the %(environment)s environment. Check the "
            "number, and that you chose the right environment."
        )
    ),
    "reference_used": (
        _(
            "This reference number has already been used to issue a certificate. Make a new certificate "
            "profile (or a new PIN) in MitID Erhverv."
        )
    ),
    "client_certificate_required": (
        _("MitID Erhverv needs the current certificate to authenticate this request.")
    ),
    "unknown_certificate": _(
        "MitID Erhverv does not know this certificate in the %(environment)s environment."
    ),
    "renewal_not_enabled": (
        _(
            "MitID Erhverv has not enabled renewal for this organisation. Ask Digst to enable it by e-mail "
            "to mitiderhverv@digst.dk."
        )
    ),
    "certificate_blocked": _("The certificate is blocked, so it cannot be renewed. Issue a new certificate."),
    "certificate_expired": (
        _(
            "The certificate has expired, so it cannot be renewed. Issue a new certificate with a new "
            "certificate profile in MitID Erhverv."
        )
    ),
    "organisation_not_allowed": _(
        "This certificate profile belongs to an organisation your account is not limited to, so the portal "
        "did not store a certificate from it. Ask an administrator to issue it with the same reference "
        "number and PIN."
    ),
    "order_not_found": _("MitID Erhverv does not know this order for this certificate."),
    "idempotency_key_reused": _("MitID Erhverv refused a repeated request that did not match the first one."),
    "idempotency_key_required": _("MitID Erhverv refused the request (no Idempotency-Key)."),
    "rate_limited": _("MitID Erhverv is busy right now. Nothing was changed; try again later."),
    "unavailable": _("MitID Erhverv is unavailable right now. Nothing was changed; try again later."),
    "tls_error": (
        _(
            "The secure connection to MitID Erhverv failed: its server certificate is not trusted "
            "(check MITID_CA_BUNDLE), or it refused the client certificate."
        )
    ),
    "unexpected_response": _("MitID Erhverv gave an answer the portal does not understand. Try again later."),
}


class MitIDError(IssuerError):
    """A failed call to MitID Erhverv.

    `code` is one of the stable codes of docs/protocol.md (plus `tls_error` and `unexpected_response`,
    which the client itself detects, and `organisation_not_allowed`, the portal's own refusal);
    `transient` says whether the same request may succeed later.
    """

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        environment: str = "",
        attempts_left: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.environment = environment
        self.attempts_left = attempts_left
        self.retry_after = retry_after
        super().__init__(self.sentence)

    @property
    def transient(self) -> bool:
        """docs/protocol.md section 2: rate_limited and unavailable, and any 429 or 5xx answer."""
        status = self.status or 0
        return self.code in TRANSIENT_CODES or status == 429 or status >= 500

    @property
    def sentence(self) -> str:
        """What to tell the person who asked, in one or two sentences."""
        text = str(SENTENCES.get(self.code, SENTENCES["unexpected_response"]))
        environment = Environment(self.environment).label if self.environment in Environment.values else "?"
        text = text % {"environment": str(environment).lower()} if "%(environment)s" in text else text
        if self.code == "invalid_pin" and self.attempts_left is not None:
            text += " " + ngettext(
                "%(count)s attempt is left before the PIN is locked.",
                "%(count)s attempts are left before the PIN is locked.",
                self.attempts_left,
            ) % {"count": self.attempts_left}
        return text

    def __repr__(self) -> str:
        return f"MitIDError(code={self.code!r}, status={self.status!r})"
