"""Where a certificate stands, in one place: its situation's key, the sentence every page, e-mail and
export shows, what to do, and the actions that can work now (and, for each that cannot, why).

`Certificate.situation(now)` builds it (certificates.models); the list, the certificate's page, the
dashboard's "Needs attention", the alert e-mails and the export all show `headline`, so no two of them
can say different things about the same certificate at the same moment.

The facts that need the database (an open or failing renewal, a late one) come in from the model, which
reads them with the same QuerySet conditions the dashboard counts with; this module imports no model, so
that `models` can use it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from .choices import LifecycleState, OrderKind, OrderState, SituationKey
from .issuers import issuer_for
from .links import object_url

if TYPE_CHECKING:
    from .models import Certificate, Order

# The CA's code for "the organisation is not enabled for renewal" (docs/protocol.md).
RENEWAL_NOT_ENABLED = "renewal_not_enabled"


def time_left(not_after: dt.datetime, now: dt.datetime | None = None) -> str:
    """'123 days', 'less than a day', 'expired today' or 'expired 5 days ago'."""
    now = now or timezone.now()
    days = (not_after - now).days
    if days >= 1:
        return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}
    if not_after > now:
        return gettext("less than a day")
    ago = (now - not_after).days  # whole days since expiry: a minute ago is "today", not "1 day ago"
    if not ago:
        return gettext("expired today")
    return ngettext("expired %(days)s day ago", "expired %(days)s days ago", ago) % {"days": ago}


def _day(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


def _minute(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Action:
    """Something a person can do about a certificate: `possible` now, or not and `reason` why.

    `permission` is the Django permission the action needs ("app.codename"), so a page shows it only to
    those who may use it; `method` is "post" for a button in a form, "get" for a link.
    """

    key: str
    label: str
    url: str
    method: str
    permission: str
    possible: bool
    reason: str = ""


@dataclass(frozen=True)
class Facts:
    """What the database says about a certificate's renewals (CertificateQuerySet.with_renewal_state)."""

    renewing: bool
    renewal_failing: bool
    renewal_late: bool
    holds_key: bool
    # Whether a renewal of it is in the inventory; None: not read yet (Situation asks when it matters).
    replaced: bool | None = None


@dataclass
class Situation:
    """A certificate's situation at `now`. `key`, `label`, `colour` and `headline` are cheap (a list of
    fifty shows them without a query each); `explanation`, `actions` and `needs_attention` may read the
    certificate's orders or its successor, and are worked out only when asked."""

    certificate: Certificate
    now: dt.datetime
    facts: Facts
    key: SituationKey = field(init=False)
    # Why the portal will not renew this certificate by itself (a short clause), when that matters.
    not_renewed_because: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.key = self._key()

    def __str__(self) -> str:
        return self.headline

    # --- the key ---------------------------------------------------------------------------------------

    def _key(self) -> SituationKey:
        c, now, facts = self.certificate, self.now, self.facts
        if c.state == LifecycleState.BLOCKED:
            return SituationKey.BLOCKED
        if c.not_after <= now:  # renewed or not: what relied on it no longer works with it
            return SituationKey.EXPIRED
        if c.state == LifecycleState.SUPERSEDED:
            return SituationKey.SUPERSEDED
        if c.not_before > now:
            return SituationKey.NOT_YET_VALID
        if facts.renewal_failing:
            return SituationKey.RENEWAL_FAILING
        if facts.renewal_late:
            return SituationKey.RENEWAL_LATE
        if facts.renewing:
            return SituationKey.RENEWING
        expiring = c.not_after <= now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
        due = c.renew_at is not None and c.renew_at <= now
        self.not_renewed_because = self._not_renewed_because()
        if (expiring or due) and self.not_renewed_because:
            return SituationKey.NOT_RENEWABLE
        return SituationKey.EXPIRING if expiring else SituationKey.VALID

    def _not_renewed_because(self) -> str:
        """Why the portal will not renew this current certificate by itself, as a clause; '' when it
        will. The same rule as CertificateQuerySet's `_auto_renewable` condition."""
        c = self.certificate
        if c.is_ca:
            return gettext("it is a CA certificate")
        if not self.facts.holds_key:
            return gettext("the portal holds no private key for it (monitor only)")
        if c.renewal_not_enabled():
            return gettext("Digst has not enabled renewal for its organisation")
        if issuer_for(c) is None:
            return gettext("no CA connected to the portal issued it")
        if not c.auto_renew:
            return gettext("automatic renewal is off")
        return ""

    # --- what every page and e-mail shows ---------------------------------------------------------------

    @property
    def label(self) -> str:
        return str(self.key.label)

    @property
    def colour(self) -> str:
        return SITUATION_COLOURS[self.key]

    @cached_property
    def headline(self) -> str:
        """The one sentence that says where the certificate stands."""
        c, now = self.certificate, self.now
        values = {"date": _day(c.not_after), "left": time_left(c.not_after, now)}
        key = self.key
        if key == SituationKey.BLOCKED:
            return gettext("Blocked at its CA: it can no longer be used.")
        if key == SituationKey.SUPERSEDED:
            return (
                gettext(
                    "Renewed: its renewal supersedes it. It stays valid until its own expiry on %(date)s."
                )
                % values
            )
        if key == SituationKey.EXPIRED:
            if c.state == LifecycleState.SUPERSEDED:
                return gettext("Expired on %(date)s; its renewal replaced it.") % values
            return gettext("Expired on %(date)s without a renewal.") % values
        if key == SituationKey.NOT_YET_VALID:
            return gettext("Not valid before %(from)s.") % {"from": _minute(c.not_before)}
        if key == SituationKey.RENEWAL_FAILING:
            return gettext("Renewal failing; the certificate expires on %(date)s (%(left)s left).") % values
        if key == SituationKey.RENEWAL_LATE:
            return gettext(
                "Renewal late: due since %(due)s and not renewed yet; expires on %(date)s (%(left)s left)."
            ) % {**values, "due": _minute(c.renew_at or c.not_after)}
        if key == SituationKey.RENEWING:
            return gettext("Renewal in progress; the certificate is valid until %(date)s.") % values
        if key == SituationKey.NOT_RENEWABLE:
            return gettext(
                "Expires on %(date)s (%(left)s left) and will not be renewed automatically: %(reason)s."
            ) % {**values, "reason": self.not_renewed_because}
        if key == SituationKey.EXPIRING:
            return gettext("Expires on %(date)s (%(left)s left); it is renewed automatically.") % values
        return gettext("Valid until %(date)s (%(left)s left).") % values

    @cached_property
    def open_renewal(self) -> Order | None:
        """The renewal order in progress, if any (read only when asked)."""
        if not self.facts.renewing:
            return None
        return self.certificate.open_renewal()

    @cached_property
    def last_failure(self) -> Order | None:
        """The most recent renewal that failed for good, if any (read only when asked)."""
        return (
            self.certificate.orders.filter(kind=OrderKind.RENEW, state=OrderState.FAILED)
            .order_by("-completed_at", "-id")
            .first()
        )

    @cached_property
    def renewal_blocker(self) -> str | None:
        """Why the portal cannot renew the certificate now (Certificate.renewal_blocker); None when it
        can or a renewal is already in progress."""
        if self.facts.renewing:
            return None
        return self.certificate.renewal_blocker(self.now)

    @cached_property
    def replaced(self) -> bool:
        """Whether a renewal of this certificate is in the inventory."""
        if self.facts.replaced is not None:
            return self.facts.replaced
        try:
            return self.certificate.replaced_by is not None
        except ObjectDoesNotExist:
            return False

    @cached_property
    def explanation(self) -> str:
        """Why it stands there and what to do, in a sentence or two ('' when there is nothing to say)."""
        c, key = self.certificate, self.key
        if key in (SituationKey.BLOCKED, SituationKey.EXPIRED, SituationKey.SUPERSEDED):
            renewed = c.state == LifecycleState.SUPERSEDED and key == SituationKey.EXPIRED
            if renewed or (key == SituationKey.BLOCKED and self.replaced):
                return gettext("It has been renewed: use its renewal.")
            return self.certificate.renewal_blocker(self.now) or ""
        if key == SituationKey.NOT_YET_VALID:
            return ""
        if key == SituationKey.RENEWAL_FAILING:
            order = self.open_renewal
            if order is not None:
                return gettext(
                    "The renewal keeps failing (%(error)s); the portal keeps trying. Check that the CA is "
                    "reachable from the portal's workers."
                ) % {"error": gettext(order.last_error) if order.last_error else "-"}
            return self._after_failure()
        if key == SituationKey.RENEWAL_LATE:
            if self.open_renewal is not None:
                return gettext(
                    "A renewal has started but not finished: check that a worker is running "
                    "(docs/operations.md, “Health endpoints”)."
                )
            if self.renewal_blocker:
                return self.renewal_blocker
            return gettext(
                "No renewal has started: check that beat and a worker are running (the /scheduler "
                "endpoint says when the last sweep ran), then click “Renew now” on the certificate's page."
            )
        if key == SituationKey.RENEWING:
            return gettext("Nothing to do: the portal collects the new certificate from the CA.")
        if key == SituationKey.NOT_RENEWABLE:
            if self.renewal_blocker:
                return self.renewal_blocker
            return gettext("Automatic renewal is off. Click “Renew now” on the certificate's page.")
        if self.not_renewed_because:  # valid for a while yet: nothing to do now, but say it
            return gettext("It will not be renewed automatically: %(reason)s.") % {
                "reason": self.not_renewed_because
            }
        if c.renew_at is not None and c.renew_at > self.now:
            return gettext("Nothing to do: automatic renewal starts on %(due)s.") % {
                "due": _minute(c.renew_at)
            }
        return gettext("Nothing to do: automatic renewal starts at the next sweep.")

    def _after_failure(self) -> str:
        failure = self.last_failure
        if failure is not None and failure.last_error_code == RENEWAL_NOT_ENABLED:
            return gettext(
                "Digst has not enabled renewal for this organisation. Ask Digst (mitiderhverv@digst.dk) to "
                "enable it; once they have, click “Digst has enabled renewal: try again”."
            )
        if self.renewal_blocker:  # Renew now would not work either: say what stands in the way
            return self.renewal_blocker
        error = gettext(failure.last_error) if failure is not None and failure.last_error else "-"
        return gettext(
            "The last renewal failed: %(error)s Deal with the cause, then click “Renew now” on the "
            "certificate's page."
        ) % {"error": error}

    # --- actions ----------------------------------------------------------------------------------------

    @cached_property
    def actions(self) -> list[Action]:
        """The actions that belong to this situation, the most useful first; each says whether it can
        work now and, if not, why (so no page offers a button, or a confirmation, that cannot work)."""
        c = self.certificate
        found = list(self._renewal_actions)
        if c.state != LifecycleState.BLOCKED and c.not_after > self.now:
            refusal = c.block_blocker(self.now)
            found.append(
                Action(
                    "block",
                    gettext("Block…"),
                    object_url("certificates:block", c.pk),
                    "get",
                    "certificates.block_certificate",
                    refusal is None,
                    refusal or "",
                )
            )
        return found

    @cached_property
    def _renewal_actions(self) -> list[Action]:
        """`actions` but blocking: a new certificate, the retry once Digst has enabled renewal, Renew now
        (the ones `primary` chooses from; a list of attention needs no more)."""
        c, key = self.certificate, self.key
        found: list[Action] = []
        lapsed = key == SituationKey.EXPIRED and c.state == LifecycleState.ACTIVE
        if lapsed or (key == SituationKey.BLOCKED and not self.replaced):
            issue = _url("mitid:issue")
            if issue:
                found.append(
                    Action(
                        "issue",
                        gettext("Issue a new certificate"),
                        issue,
                        "get",
                        "mitid.issue_certificate",
                        True,
                    )
                )
        if self._enabled_retry_applies():
            found.append(
                Action(
                    "renew_enabled",
                    gettext("Digst has enabled renewal: try again"),
                    object_url("certificates:renew-enabled", c.pk),
                    "post",
                    "certificates.renew_certificate",
                    True,
                )
            )
        blocker, in_progress = self.renewal_blocker, self.facts.renewing
        found.append(
            Action(
                "renew",
                gettext("Renew now"),
                object_url("certificates:renew", c.pk),
                "post",
                "certificates.renew_certificate",
                not blocker and not in_progress,
                gettext("A renewal of this certificate is already in progress.")
                if in_progress
                else (blocker or ""),
            )
        )
        return found

    def _enabled_retry_applies(self) -> bool:
        """ "Digst has enabled renewal: try again" helps where only the refusal stands in the way."""
        c = self.certificate
        return (
            c.renewal_not_enabled()
            and c.state == LifecycleState.ACTIVE
            and c.not_after > self.now
            and not c.is_ca
            and self.facts.holds_key
            and not self.facts.renewing
        )

    def action(self, key: str) -> Action | None:
        return next((a for a in self.actions if a.key == key), None)

    @property
    def renew(self) -> Action | None:
        return self.action("renew")

    @property
    def block(self) -> Action | None:
        return self.action("block")

    @cached_property
    def primary(self) -> Action | None:
        """The first action that can work now and that this situation calls for ('Needs attention' shows
        it): a new certificate for a lapsed or blocked one, the retry once Digst has enabled renewal, or
        Renew now where a renewal would help. None: nothing a button can do (the explanation says what)."""
        useful = {"issue", "renew_enabled"}
        if self.key in (SituationKey.RENEWAL_FAILING, SituationKey.RENEWAL_LATE, SituationKey.NOT_RENEWABLE):
            useful.add("renew")
        return next((a for a in self._renewal_actions if a.possible and a.key in useful), None)

    # --- attention --------------------------------------------------------------------------------------

    @cached_property
    def needs_attention(self) -> bool:
        """Whether a person must act (the same rule as CertificateQuerySet.needs_attention)."""
        key = self.key
        if key == SituationKey.EXPIRED:
            recent = self.certificate.not_after > self.now - dt.timedelta(days=RECENT_LAPSE_DAYS)
            return recent and self.certificate.state == LifecycleState.ACTIVE
        if key == SituationKey.BLOCKED:
            return self.certificate.not_after > self.now and not self.replaced
        return key in (SituationKey.RENEWAL_FAILING, SituationKey.RENEWAL_LATE, SituationKey.NOT_RENEWABLE)

    def as_dict(self) -> dict[str, str]:
        """The key, label and sentence, for an export or an API (one query-free call per certificate
        when it was read with CertificateQuerySet.with_situation)."""
        return {"key": self.key.value, "label": self.label, "headline": self.headline}


def _url(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:  # the CA app that provides it is not installed
        return ""


# A failed renewal keeps a current certificate "renewal failing" this long (unless a retry succeeds).
RENEWAL_FAILING_DAYS = 30
# A certificate that lapsed stays on the dashboard's "needs attention" this long.
RECENT_LAPSE_DAYS = 30

SITUATION_COLOURS = {
    SituationKey.VALID: "green",
    SituationKey.EXPIRING: "amber",
    SituationKey.EXPIRED: "red",
    SituationKey.SUPERSEDED: "grey",
    SituationKey.BLOCKED: "red",
    SituationKey.NOT_YET_VALID: "blue",
    SituationKey.RENEWING: "blue",
    SituationKey.RENEWAL_FAILING: "red",
    SituationKey.RENEWAL_LATE: "red",
    SituationKey.NOT_RENEWABLE: "amber",
}
