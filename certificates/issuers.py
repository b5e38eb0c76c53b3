"""The interface between the inventory and the CAs that issue, renew and block certificates.

`certificates` knows no CA. A CA app (today `mitid`) provides an Issuer and names it in
settings.TRUSTVIEW_ISSUERS; `issuer_for` finds the one that handles a certificate. Another CA (ACME,
ADCS) is a sibling app with its own Issuer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.db.models import Q
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .models import Certificate
    from .x509 import Bundle


class IssuerError(Exception):
    """A CA refused or could not be reached. `sentence` says what happened and what to do; `transient`
    says whether the same request may succeed later (after `retry_after` seconds, if the CA said)."""

    code: str = "error"
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return False

    @property
    def sentence(self) -> str:
        return str(self)


@dataclass(frozen=True)
class IssuerOrder:
    """A CA's order: `in_progress` (ask again after `retry_after` seconds) or `issued` with the bundle."""

    order_id: str
    status: str
    retry_after: float | None = None
    bundle: Bundle | None = None


class Issuer(Protocol):
    """What the inventory needs from a CA."""

    name: str

    def handles(self, certificate: Certificate) -> bool:
        """Whether this CA issued the certificate and can renew or block it."""

    def handled(self) -> Q:
        """The certificates `handles` accepts, as a query condition (so a count agrees with a page)."""

    def renewal_refusal(self, certificate: Certificate) -> str | None:
        """A sentence saying why this CA will not renew the certificate now (before asking it), or None."""

    def request_renewal(self, certificate: Certificate, *, idempotency_key: str) -> IssuerOrder:
        """Ask for a renewal, authenticated as the certificate. Safe to repeat with the same key."""

    def order_status(self, certificate: Certificate, order_id: str) -> IssuerOrder:
        """Where a renewal order stands; once issued, it carries the new certificate and key."""

    def block(self, certificate: Certificate, *, idempotency_key: str) -> None:
        """Block (revoke) the certificate. Irreversible."""


@cache
def _issuers() -> tuple[Issuer, ...]:
    return tuple(import_string(path)() for path in settings.TRUSTVIEW_ISSUERS)


def handled_by_an_issuer() -> Q:
    """The certificates some configured CA handles (the query form of `issuer_for(c) is not None`)."""
    condition = Q(pk__in=[])
    for issuer in _issuers():
        condition |= issuer.handled()
    return condition


def issuer_for(certificate: Certificate) -> Issuer | None:
    """The CA that can renew and block this certificate, if any is configured."""
    return next((issuer for issuer in _issuers() if issuer.handles(certificate)), None)
