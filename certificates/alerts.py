"""E-mail to the people who look after certificates: expiry digests, lapses, late and failing renewals,
outages (incidents), the scheduler, a monthly status, and a test e-mail.

Each e-mail is a template triplet under templates/email/: NAME_subject.txt, NAME.txt and NAME.html.
Who receives an alert: the portal's recipients (`recipients()`), and for an alert about particular
certificates also those certificates' own contacts (CertificateContact), each in one e-mail per run
that lists only their certificates.

An alert about a certificate is claimed before it is sent: its ExpiryAlert row is inserted first, and
only the run whose insert succeeded sends it. Two runs at once (a redelivered task beside the original,
two beat processes during a deploy) therefore send it once. Every certificate alert is written to that
certificate's history.

Every alert also goes to the chat and webhook channels concerned (certificates.channels): queued as
messages in the same run, delivered by their own tasks, so they never hold up the e-mail or each other.
An alert counts as told when an e-mail was accepted or a channel message was queued.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import TruncMonth
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_noop

from . import channels
from .channels import Item, describe_with
from .choices import (
    OPEN_ORDER_STATES,
    AlertKind,
    EventKind,
    IncidentKind,
    OrderKind,
    OrderState,
    Status,
)
from .models import (
    RECENT_LAPSE_DAYS,
    Certificate,
    CertificateContact,
    CertificateQuerySet,
    Event,
    ExpiryAlert,
    Incident,
    NotificationSettings,
    Order,
)
from .services import SCHEDULER, record_event

log = logging.getLogger(__name__)

# The monthly status lists at most this many certificates by name in each of its lists.
MONTHLY_LIST_LIMIT = 50
# ... and the organisations with the most certificates expiring, each with a link to their list.
MONTHLY_ORGANISATION_LIMIT = 10

Entry = dict[str, Any]
# What an alert about many certificates never shows: read lazily if ever, not for every listed certificate.
HEAVY_FIELDS = ("pem", "chain_pem", "private_key_encrypted")

# History entries written by earlier versions, kept in the catalogue so that they are still translated.
STORED_MESSAGES = (gettext_noop("Alert sent: renewal keeps failing (%(attempts)s attempts)."),)


def recipients() -> list[str]:
    """The recipients set in the portal, else TRUSTVIEW_ALERT_EMAILS, else every active administrator
    with an e-mail address."""
    configured = _notification_settings().recipients or [a for a in settings.TRUSTVIEW_ALERT_EMAILS if a]
    if configured:
        return list(configured)
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _notification_settings() -> NotificationSettings:
    """The portal's notification settings, read without creating the row (every page asks, for the
    banner), or empty ones when none were saved yet."""
    return NotificationSettings.objects.filter(pk=1).first() or NotificationSettings()


def send(template: str, context: dict[str, Any], to: list[str]) -> None:
    """Render a subject/text/HTML triplet and send it. Raises on a mail server error."""
    compose(template, context, to).send()


def compose(template: str, context: dict[str, Any], to: list[str]) -> EmailMultiAlternatives:
    """The e-mail of a subject/text/HTML triplet, rendered (reading the database) but not sent."""
    context = {"base_url": settings.TRUSTVIEW_BASE_URL.rstrip("/"), **context}
    with translation.override(settings.TRUSTVIEW_EMAIL_LANGUAGE):
        subject = _one_line(render_to_string(f"email/{template}_subject.txt", context))
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(f"email/{template}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=to,
        )
        message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    return message


def _one_line(text: str) -> str:
    """A subject is plain text (its template does not HTML-escape) on one line: control characters from a
    certificate's name become spaces, so no header can be injected or broken."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())


def _send_quietly(template: str, context: dict[str, Any], to: list[str]) -> bool:
    """Send, and log instead of raising when the mail server fails. True when the server took it."""
    try:
        send(template, context, to)
    except OSError:  # smtplib's errors and refused connections alike
        log.exception("Could not send the %s e-mail", template)
        return False
    return True


def _sent(message: EmailMultiAlternatives) -> bool:
    """Send a rendered e-mail; True when the mail server took it (a refusal is logged)."""
    try:
        message.send()
    except OSError:  # smtplib's errors and refused connections alike
        log.exception("Could not send the e-mail %r", message.subject)
        return False
    return True


def contacts_by_certificate(certificates: Iterable[Certificate]) -> dict[int, list[str]]:
    """Each certificate's own contacts (addresses), by certificate id."""
    return contacts_by_certificate_id([c.pk for c in certificates])


def contacts_by_certificate_id(ids: list[int]) -> dict[int, list[str]]:
    """Each certificate's own contacts (addresses), by certificate id."""
    found: dict[int, list[str]] = {}
    rows = CertificateContact.objects.filter(certificate__in=ids)
    for certificate_id, address in rows.values_list("certificate_id", "email"):
        found.setdefault(certificate_id, []).append(address)
    return found


def _deliver(
    template: str,
    entries: list[Entry],
    to: list[str],
    contacts: dict[int, list[str]],
    context: dict[str, Any] | None = None,
) -> set[str]:
    """One e-mail to the portal's recipients listing every entry, and one to each certificate contact
    listing the entries of their certificates (a contact who is a recipient already has them all).
    Returns the addresses the mail server accepted."""
    context = context or {}
    reached: set[str] = set()
    if to and _send_quietly(template, {**context, "entries": entries}, to):
        reached.update(to)
    by_contact: dict[str, list[Entry]] = {}
    for entry in entries:
        for address in contacts.get(entry["certificate"].pk, []):
            if address not in to:
                by_contact.setdefault(address, []).append(entry)
    for address, theirs in sorted(by_contact.items()):
        if _send_quietly(template, {**context, "entries": theirs}, [address]):
            reached.add(address)
    return reached


def _told(
    certificate: Certificate, to: list[str], contacts: dict[int, list[str]], reached: set[str]
) -> list[str]:
    """Who of the recipients and this certificate's contacts actually received an e-mail about it."""
    return [a for a in dict.fromkeys([*to, *contacts.get(certificate.pk, [])]) if a in reached]


def _claim(
    certificate: Certificate, kind: AlertKind, threshold_days: int, to: list[str]
) -> ExpiryAlert | None:
    """Insert the alert's row, or None when another run already has (the unique constraint decides)."""
    try:
        with transaction.atomic():
            return ExpiryAlert.objects.create(
                certificate=certificate, kind=kind, threshold_days=threshold_days, recipients=to
            )
    except IntegrityError:
        return None


def _unalerted(kind: AlertKind) -> Exists:
    return Exists(ExpiryAlert.objects.filter(certificate=OuterRef("pk"), kind=kind))


# --- expiry ----------------------------------------------------------------------------------------


def thresholds() -> list[int]:
    """Days before expiry at which to alert, largest first: set in the portal, else in the environment
    (default 30 and 14)."""
    configured = _notification_settings().thresholds_days or settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS
    return sorted({int(days) for days in configured}, reverse=True)


def send_expiry_alerts(now: dt.datetime | None = None) -> int:
    """Alert once per (certificate, threshold) crossed, however late the run: crossing, not equality.

    Each recipient gets one e-mail per run about the certificates that crossed a threshold they have no
    alert for, most urgent first (a certificate that crossed several thresholds at once is listed once, at
    the most urgent); every crossed threshold is recorded. The e-mail is bounded: past
    EXPIRY_LIST_LIMIT certificates it says how many crossed each threshold, lists the soonest and links
    to the certificate list filtered to the rest. The run's memory does not grow with the certificates:

    1. Claim, in chunks of CLAIM_CHUNK in expiry order (ids and expiry dates only), each chunk committed:
       the alert rows are inserted with this run's token (`ExpiryAlert.run`); a row another run inserted
       first stays that run's (the unique constraint decides), so two runs at once send each alert once.
    2. Send the e-mails, each read from the database (counts per threshold, and the soonest rows).
    3. Record, in one transaction: the chat and webhook messages, the rows told (`run` emptied, with
       their recipients) and one history entry per certificate.

    Mark, then send, then record. A run stopped before it sends has told nobody, and its claims go back:
    on an exception at once (deleted), and a killed worker's after ABANDONED_CLAIM_AFTER (the next run
    takes them over). So a crash loses no alert and sends none twice, but in one window: the worker
    killed after the mail server accepted an e-mail and before 3 commits sends it again after
    ABANDONED_CLAIM_AFTER (an exception there instead keeps them sent, without their history entries).
    A run renews its claims before each e-mail, so however long it sends, they are never taken over.
    When no e-mail could be sent and no message queued, the claims are given up and the next run tries
    again. Returns the number of certificates alerted.
    """
    now = now or timezone.now()
    levels = thresholds()
    if not levels:
        return 0
    run = uuid.uuid4().hex
    mine = ExpiryAlert.objects.filter(kind=AlertKind.EXPIRY, run=run)
    alerted = _alerted_in(run)
    due = _due_for_expiry_alert(levels, now)
    reached: set[str] = set()
    started = timezone.now()

    def still_sending() -> None:
        """Renew this run's claims (their `sent_at`, by the time it has run) before each e-mail, so that a
        run sending for long (a slow mail server; Redis redelivering the task after an hour) is never
        taken for a killed one."""
        mine.update(sent_at=now + (timezone.now() - started))

    try:
        _take_over_abandoned_claims(run, now)
        if not mine.exists() and not due.exists():
            return 0
        to = recipients()
        if not to and not _anyone_else_to_tell(due, alerted):
            log.warning("Expiry alerts are due but nobody is set to receive them (TRUSTVIEW_ALERT_EMAILS).")
            _give_up(run)
            return 0
        _claim_due(due, levels, to, run, now)
        if not mine.exists():
            return 0  # another run claimed them a moment ago: that run sends them
        _send_expiry_emails(alerted, levels, to, now, reached, still_sending)
        with transaction.atomic():
            queued = _queue_expiry_messages(alerted, levels, now)
            told = _record_expiry_alerts(alerted, levels, to, reached, run, now) if reached or queued else 0
    except BaseException:
        if not reached:  # nobody was told: the next run (or a retry) claims them again
            _give_up(run)
        else:  # an e-mail went out: never again, even if its history entries are lost
            _settle(run)
        raise
    if not told:
        _give_up(run)  # nobody was told: the next run tries again
    return told


def _give_up(run: str) -> None:
    """Delete a run's claims that nobody was told of, so that the next run claims them again."""
    ExpiryAlert.objects.filter(kind=AlertKind.EXPIRY, run=run).delete()


def _settle(run: str) -> None:
    """A run that failed after an e-mail went out: its claims become sent (to the recipients they were
    claimed for) without their history entries, rather than be taken over and e-mailed again by every
    later run. When the database is what failed, they stay claimed: the documented window."""
    log.error("Expiry alerts were e-mailed but the run failed before recording them; they stay sent.")
    with contextlib.suppress(DatabaseError):
        ExpiryAlert.objects.filter(kind=AlertKind.EXPIRY, run=run).update(run="")


# A run of the expiry alerts claims this many certificates at a time (one commit each) ...
CLAIM_CHUNK = 1000
# ... lists at most this many by name in an e-mail (the soonest; the rest are counted and linked) ...
EXPIRY_LIST_LIMIT = 50
# ... names at most this many in a chat or webhook message, the rest counted (a chat shows the first 25; a
# webhook gets them all: a day's alerts at 1,000,000 certificates, about 1,800, fit) ...
CHANNEL_LIST_LIMIT = 2000
# ... and takes over the claims of a run stopped this long ago without telling anyone (a killed worker).
# A run still sending renews its claims before each e-mail: far longer than one e-mail takes (EMAIL_TIMEOUT).
ABANDONED_CLAIM_AFTER = dt.timedelta(hours=1)


def _due_for_expiry_alert(levels: list[int], now: dt.datetime) -> CertificateQuerySet:
    """Current certificates that crossed a threshold they have no alert for (an index range: only those
    within the largest threshold are read, whatever the inventory holds beyond it)."""
    needs_alert = Q()
    for days in levels:
        sent = ExpiryAlert.objects.filter(
            certificate=OuterRef("pk"), kind=AlertKind.EXPIRY, threshold_days=days
        )
        needs_alert |= Q(~Exists(sent), not_after__lte=now + dt.timedelta(days=days))
    return Certificate.objects.current(now).filter(
        needs_alert, not_after__lte=now + dt.timedelta(days=levels[0])
    )


def _alerted_in(run: str) -> CertificateQuerySet:
    """The certificates this run claimed, each with `threshold`: the most urgent threshold it claimed."""
    claims = ExpiryAlert.objects.filter(certificate=OuterRef("pk"), kind=AlertKind.EXPIRY, run=run)
    return Certificate.objects.filter(Exists(claims)).annotate(
        threshold=Subquery(claims.order_by("threshold_days").values("threshold_days")[:1])
    )


def _take_over_abandoned_claims(run: str, now: dt.datetime) -> None:
    """Claims of a run stopped over ABANDONED_CLAIM_AFTER ago without telling anyone become this run's
    (one UPDATE: of two runs at once, one takes each); those of certificates no longer current are
    dropped (nobody was told of them, and there is nothing left to tell)."""
    abandoned = ExpiryAlert.objects.filter(
        kind=AlertKind.EXPIRY, sent_at__lt=now - ABANDONED_CLAIM_AFTER
    ).exclude(run="")
    abandoned.exclude(certificate__in=Certificate.objects.current(now).values("pk")).delete()
    abandoned.update(run=run, sent_at=now)


def _anyone_else_to_tell(due: CertificateQuerySet, alerted: CertificateQuerySet) -> bool:
    """Whether a certificate contact or a chat or webhook channel would hear of these certificates."""
    concerned = Certificate.objects.filter(Q(pk__in=due.values("pk")) | Q(pk__in=alerted.values("pk")))
    if CertificateContact.objects.filter(certificate__in=concerned.values("pk")).exists():
        return True
    organisations = concerned.order_by().values_list("organization_id", flat=True).distinct()
    return bool(channels.channels_for(organisations))


def _claim_due(
    due: CertificateQuerySet, levels: list[int], to: list[str], run: str, now: dt.datetime
) -> None:
    """Insert this run's alert rows for every threshold each due certificate crossed, CLAIM_CHUNK
    certificates at a time in expiry order, each chunk committed; a row that exists already (sent, or
    claimed by another run) is left alone."""
    after: tuple[int, dt.datetime] | None = None
    while True:
        chunk = due.order_by("not_after", "pk")
        if after is not None:
            chunk = chunk.filter(Q(not_after__gt=after[1]) | Q(not_after=after[1], pk__gt=after[0]))
        rows = list(chunk.values_list("pk", "not_after")[:CLAIM_CHUNK])
        if not rows:
            return
        claims = [
            ExpiryAlert(
                certificate_id=pk,
                kind=AlertKind.EXPIRY,
                threshold_days=days,
                recipients=to,
                sent_at=now,
                run=run,
            )
            for pk, not_after in rows
            for days in levels
            if not_after <= now + dt.timedelta(days=days)
        ]
        _insert_claims(claims)
        after = rows[-1]


def _insert_claims(claims: list[ExpiryAlert]) -> None:
    """Insert the rows not there yet (ON CONFLICT DO NOTHING: on PostgreSQL, after waiting for another
    run inserting the same rows to commit), committed."""
    with transaction.atomic():
        ExpiryAlert.objects.bulk_create(claims, ignore_conflicts=True)


def _send_expiry_emails(
    alerted: CertificateQuerySet,
    levels: list[int],
    to: list[str],
    now: dt.datetime,
    reached: set[str],
    still_sending: Callable[[], None],
) -> None:
    """One e-mail to the portal's recipients about every certificate alerted, and one to each
    certificate contact about theirs (a contact who is a recipient already has them all). Adds to
    `reached` each address the mail server accepted, as it does (so a run that fails half-way knows);
    calls `still_sending` before each e-mail."""
    if to:
        still_sending()
        if _send_quietly("expiry_alert", _expiry_context(alerted, levels, now), to):
            reached.update(to)
    contacts = (
        CertificateContact.objects.filter(certificate__in=alerted.values("pk"))
        .exclude(email__in=to)
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )
    for address in list(contacts):
        theirs = alerted.filter(contacts__email=address)
        still_sending()
        if _send_quietly("expiry_alert", _expiry_context(theirs, levels, now), [address]):
            reached.add(address)


def _expiry_context(certificates: CertificateQuerySet, levels: list[int], now: dt.datetime) -> dict[str, Any]:
    """What an expiry e-mail says of these certificates: how many crossed each threshold, the soonest
    EXPIRY_LIST_LIMIT (each with its situation, read in the same query) and a link to the rest."""
    thresholds_crossed = certificates.values_list("threshold", flat=True)  # type: ignore[misc]
    per_threshold = Counter(thresholds_crossed.iterator(chunk_size=CLAIM_CHUNK))
    listed = certificates.for_listing().with_situation(now).order_by("not_after", "pk")[:EXPIRY_LIST_LIMIT]
    entries = [_expiry_entry(c, c.threshold, levels, now) for c in listed]  # type: ignore[attr-defined]
    total = sum(per_threshold.values())
    return {
        "entries": entries,
        "total": total,
        "more": total - len(entries),
        "per_threshold": [
            {"threshold": days, "count": per_threshold[days], "critical": days == min(levels)}
            for days in sorted(per_threshold)
        ],
        "within_days": levels[0],
        "rest_url": expiring_list_url(levels[0]),
    }


def expiring_list_url(days: int) -> str:
    """The certificate list filtered to the certificates in use that expire within `days`, soonest first
    (the path; the e-mails put the portal's address before it). Within TRUSTVIEW_EXPIRING_DAYS those are
    exactly the status "expiring"; beyond it the list shows superseded ones too."""
    query = {"expires_within": str(days), "sort": "expiry"}
    if days <= settings.TRUSTVIEW_EXPIRING_DAYS:
        query = {"status": str(Status.EXPIRING.value), **query}
    return f"{reverse('certificates:list')}?{urlencode(query)}"


def _expiry_entry(certificate: Certificate, threshold: int, levels: list[int], now: dt.datetime) -> Entry:
    return {
        "certificate": certificate,
        "days_left": (certificate.not_after - now).days,
        "critical": threshold == min(levels),
        "threshold": threshold,
    }


def _queue_expiry_messages(alerted: CertificateQuerySet, levels: list[int], now: dt.datetime) -> int:
    """The chat and webhook messages about the certificates alerted: each names the soonest
    CHANNEL_LIST_LIMIT of its certificates and counts them all."""
    critical = alerted.filter(threshold=min(levels)).exists()  # type: ignore[misc]

    def item(certificate: Certificate) -> Item:
        days = (certificate.not_after - now).days
        return Item(certificate, gettext_noop("expires in %(days)s days"), {"days": days})

    return channels.notify_counted(
        "expiry",
        "critical" if critical else "warning",
        alerted.defer(*HEAVY_FIELDS).order_by("not_after", "pk"),
        item,
        describe_with(
            gettext_noop("Certificates expiring: %(count)s"),
            gettext_noop(
                "These certificates crossed an expiry alert threshold and have not been renewed yet."
            ),
        ),
        CHANNEL_LIST_LIMIT,
    )


def _record_expiry_alerts(
    alerted: CertificateQuerySet,
    levels: list[int],
    to: list[str],
    reached: set[str],
    run: str,
    now: dt.datetime,
) -> int:
    """Mark this run's claims told, with who received each, and write each certificate's history entry,
    CLAIM_CHUNK certificates at a time. Returns how many certificates were alerted."""
    everyone = [address for address in to if address in reached]
    count = 0
    while True:
        # The told ones leave `alerted` (their run is emptied): each pass reads the next chunk.
        chunk = alerted.order_by("pk").values_list("pk", "not_after", "threshold")  # type: ignore[misc]
        rows = list(chunk[:CLAIM_CHUNK])
        if not rows:
            return count
        contacts = contacts_by_certificate_id([pk for pk, _not_after, _threshold in rows])
        events: list[Event] = []
        plain: list[int] = []
        for pk, not_after, threshold in rows:
            told = [a for a in dict.fromkeys([*everyone, *contacts.get(pk, [])]) if a in reached]
            if told == everyone:
                plain.append(pk)
            else:
                ExpiryAlert.objects.filter(certificate_id=pk, run=run).update(
                    recipients=told, run="", sent_at=now
                )
            critical = threshold == min(levels)
            events.append(
                Event(
                    certificate_id=pk,
                    kind=EventKind.ALERT_SENT,
                    actor_label=SCHEDULER,
                    message=gettext_noop("Critical alert sent: expires in %(days)s days.")
                    if critical
                    else gettext_noop("Expiry alert sent: expires in %(days)s days."),
                    detail={"days": (not_after - now).days, "threshold_days": threshold, "recipients": told},
                )
            )
        ExpiryAlert.objects.filter(certificate_id__in=plain, run=run).update(
            recipients=everyone, run="", sent_at=now
        )
        Event.objects.bulk_create(
            events
        )  # no receiver listens for this kind (bulk_create sends no post_save)
        count += len(rows)


# --- lapses and late renewals ----------------------------------------------------------------------


def after_sweep(now: dt.datetime | None = None) -> None:
    """The checks that run with every renewal sweep (cheap indexed queries): lapses, late renewals, the
    scheduler running again after it had stopped, and a renewal outage that is over."""
    now = now or timezone.now()
    for check in (send_lapse_alerts, send_late_renewal_alerts, scheduler_running, renewal_outage_over):
        try:
            check(now)
        except Exception:  # one failing check must not keep the others from running
            log.exception("The %s check after the sweep failed; the next sweep tries again.", check.__name__)


def send_lapse_alerts(now: dt.datetime | None = None) -> int:
    """A certificate that expired while the portal watched it (active, no successor, in the inventory
    before it expired) gets a history entry and an immediate e-mail, once.

    The alert row and the history entry are written together, before the e-mail, so a lapse is recorded
    once even when nobody receives alerts or the mail server fails (the dashboard lists it either way).
    Returns the number of lapses found.
    """
    now = now or timezone.now()
    lapsed = list(
        Certificate.objects.lapsed(now, since=now - dt.timedelta(days=RECENT_LAPSE_DAYS))
        .filter(created_at__lt=F("not_after"))
        .filter(~_unalerted(AlertKind.LAPSED))
        .with_situation(now)  # the e-mails say each one's situation: no query per certificate
        .order_by("not_after", "pk")
    )
    if not lapsed:
        return 0
    to = recipients()
    entries: list[Entry] = []
    for certificate in lapsed:
        with transaction.atomic():
            if _claim(certificate, AlertKind.LAPSED, 0, to) is None:
                continue
            record_event(certificate, EventKind.LAPSED, SCHEDULER, gettext_noop("Expired without a renewal."))
        last_failure = (
            Order.objects.filter(certificate=certificate, kind=OrderKind.RENEW, state=OrderState.FAILED)
            .order_by("-completed_at")
            .first()
        )
        entries.append({"certificate": certificate, "last_failure": last_failure})
    channels.notify(
        "lapsed",
        "critical",
        [Item(e["certificate"], gettext_noop("expired without a renewal")) for e in entries],
        describe_with(
            gettext_noop("Expired without a renewal: %(count)s"),
            gettext_noop(
                "These certificates expired without a renewal. An expired certificate cannot be renewed: "
                "order a new one."
            ),
        ),
    )
    _tell(
        entries, "lapse_alert", AlertKind.LAPSED, to, gettext_noop("Alert sent: expired without a renewal.")
    )
    return len(entries)


def send_late_renewal_alerts(now: dt.datetime | None = None) -> int:
    """A certificate the portal should renew (active, auto-renew, key held) whose renewal has been due for
    longer than TRUSTVIEW_RENEWAL_LATE_HOURS without a successor, whatever the reason (CA down, worker or
    beat down, renewal not enabled): one e-mail, once, saying what to do. Returns how many were late."""
    now = now or timezone.now()
    late = list(
        Certificate.objects.renewal_overdue(now)
        .filter(~_unalerted(AlertKind.RENEWAL_LATE))
        .with_situation(now)  # the e-mails say each one's situation: no query per certificate
        .order_by("not_after", "pk")
    )
    if not late:
        return 0
    to = recipients()
    entries: list[Entry] = []
    for certificate in late:
        if _claim(certificate, AlertKind.RENEWAL_LATE, 0, to) is None:
            continue
        # What to do comes from the certificate's situation (the e-mail shows its explanation).
        entries.append({"certificate": certificate})
    channels.notify(
        "renewal_late",
        "warning",
        [Item(e["certificate"], gettext_noop("renewal is late")) for e in entries],
        describe_with(
            gettext_noop("Renewal late: %(count)s"),
            gettext_noop(
                "These certificates have been due for renewal for a while and are not renewed yet. Open "
                "each one to see why."
            ),
        ),
    )
    _tell(entries, "renewal_late", AlertKind.RENEWAL_LATE, to, gettext_noop("Alert sent: renewal late."))
    return len(entries)


def _tell(entries: list[Entry], template: str, kind: AlertKind, to: list[str], event_message: str) -> None:
    """E-mail claimed alerts (one digest per recipient) and write each to its certificate's history.
    A failure is logged: these alerts are not retried (the dashboard and the history keep them)."""
    if not entries:
        return
    certificates = [entry["certificate"] for entry in entries]
    contacts = contacts_by_certificate(certificates)
    if not to and not contacts:
        log.error(
            "%s certificate(s) need attention (%s) but nobody is set to receive alerts.", len(entries), kind
        )
        return
    reached = _deliver(template, entries, to, contacts)
    for certificate in certificates:
        told = _told(certificate, to, contacts, reached)
        ExpiryAlert.objects.filter(certificate=certificate, kind=kind).update(recipients=told)
        if told:
            record_event(certificate, EventKind.ALERT_SENT, SCHEDULER, event_message, recipients=told)


# --- renewal failures and outages ------------------------------------------------------------------


def renewal_failed(order: Order) -> None:
    """A renewal failed for good: tell a person at once, with what to do (which depends on whether the
    certificate can still be renewed)."""
    certificate = order.certificate
    now = timezone.now()
    channels.notify(
        "renewal_failed",
        "critical",
        [Item(certificate, order.last_error or order.last_error_code)],
        describe_with(
            gettext_noop("Renewal failed: %(name)s"),
            gettext_noop(
                "The renewal of %(name)s failed and will not be retried by itself. Open it to see what to do."
            ),
            name=certificate.subject_cn,
        ),
    )
    to = recipients()
    contacts = contacts_by_certificate([certificate])
    if not to and not contacts:
        log.error("Renewal order %s failed but nobody is set to receive alerts.", order.pk)
        return
    entry = {"certificate": certificate, "order": order, "expired": certificate.not_after <= now}
    reached = _deliver(
        "renewal_failed", [entry], to, contacts, {"order": order, "certificate": certificate, **entry}
    )
    told = _told(certificate, to, contacts, reached)
    if told:
        record_event(
            certificate,
            EventKind.ALERT_SENT,
            SCHEDULER,
            gettext_noop("Alert sent: renewal failed."),
            order=order.pk,
            recipients=told,
        )


def renewal_keeps_failing(order: Order) -> None:
    """A renewal keeps failing for a passing reason (the portal keeps trying). Many orders failing at once
    is one outage: the first opens an incident and e-mails once, listing every certificate whose renewal
    is failing then; later ones join it quietly. `renewals_recovered` closes it."""
    now = timezone.now()

    def failing_now() -> list[Certificate]:
        others = (
            Certificate.objects.filter(
                orders__kind=OrderKind.RENEW, orders__state__in=OPEN_ORDER_STATES, orders__attempts__gt=0
            )
            .exclude(pk=order.certificate_id)
            .defer(*HEAVY_FIELDS)
        )
        return [order.certificate, *others.distinct()]

    for _attempt in range(3):
        incident, opened = _open_incident(IncidentKind.RENEWALS_FAILING, now, failing_now)
        if opened:
            affected = list(incident.certificates.defer(*HEAVY_FIELDS))
            break
        # Join it under its row's lock, which `_close_incident` takes too: an outage is never closed
        # just as a new failure joins it (the failure would then be told by nobody).
        with transaction.atomic():
            if Incident.objects.select_for_update().filter(pk=incident.pk, closed_at=None).exists():
                incident.certificates.add(order.certificate)
                affected = [order.certificate]
                break
        # Closed a moment ago: this failure opens the next outage.
    else:  # pragma: no cover - three outages closing in a row
        raise RuntimeError("Could not open or join the renewal outage")
    record_event(
        order.certificate,
        EventKind.ALERT_SENT,
        SCHEDULER,
        gettext_noop(
            "Renewal keeps failing (%(attempts)s attempts): part of the renewal outage since %(since)s."
        ),
        attempts=order.attempts,
        since=timezone.localtime(incident.opened_at).strftime("%Y-%m-%d %H:%M"),
        order=order.pk,
    )
    if not opened:
        return
    queued = channels.notify(
        "renewal_failing",
        "warning",
        [Item(c) for c in sorted(affected, key=lambda c: c.not_after)],
        describe_with(
            gettext_noop("Renewals keep failing: %(count)s"),
            gettext_noop(
                "Renewing these certificates keeps failing for a passing reason (the CA is unavailable or "
                "refuses for now). The portal keeps trying and says when renewals work again."
            ),
        ),
    )
    to = recipients()
    if not to:
        if not queued:
            log.error("Renewals keep failing but nobody is set to receive alerts.")
        return
    orders = {
        o.certificate_id: o
        for o in Order.objects.open().filter(kind=OrderKind.RENEW, certificate__in=affected)
    }
    entries = [
        {"certificate": c, "order": orders.get(c.pk, order)}
        for c in sorted(affected, key=lambda c: c.not_after)
    ]
    sent = _send_quietly("renewal_failing", {"entries": entries, "incident": incident, "order": order}, to)
    if not sent and not queued:
        # Nobody heard of it: let the next failing order open it again and try to tell.
        incident.delete()


def renewals_recovered(now: dt.datetime | None = None) -> bool:
    """A renewal succeeded: close the open renewal outage, if there is one, and say so once, with where
    each affected certificate stands. Returns whether an outage was closed."""
    return _close_incident(IncidentKind.RENEWALS_FAILING, now or timezone.now(), _recovery)


def renewal_outage_over(now: dt.datetime | None = None) -> bool:
    """The sweep's backstop for the renewal outage, decided under the incident's lock:
    - a renewal has been issued since it opened (the renewal's own closing may have failed, the database
      restarting between the two): say that renewals work again;
    - a renewal is still failing or under way (any, not only the incident's: certificates that start
      failing later are the same outage): leave it open;
    - else every order of the outage ended without a success (each failure was alerted on its own) or
      was cancelled by a person: close it quietly, so that the next outage is told again.
    Returns whether an outage was closed."""

    def decide(incident: Incident) -> Telling | None:
        members = Order.objects.filter(certificate__incidents=incident, kind=OrderKind.RENEW)
        if members.filter(state=OrderState.ISSUED, completed_at__gte=incident.opened_at).exists():
            return _recovery(incident)
        renewals = Order.objects.filter(kind=OrderKind.RENEW).open()
        if members.open().exists() or renewals.filter(attempts__gt=0).exists():
            return None
        return Telling()

    return _close_incident(IncidentKind.RENEWALS_FAILING, now or timezone.now(), decide)


def _recovery(incident: Incident) -> Telling:
    """What "renewals work again" says: each affected certificate and where it stands."""
    entries: list[Entry] = []
    items: list[Item] = []
    for c in incident.certificates.defer(*HEAVY_FIELDS).order_by("not_after", "pk"):
        renewed = Certificate.objects.filter(renewed_from=c).exists()
        open_renewal = c.open_renewal()
        entries.append({"certificate": c, "renewed": renewed, "open_renewal": open_renewal})
        items.append(Item(c, _recovery_note(renewed, open_renewal)))
    queued = channels.notify(
        "renewals_recovered",
        "good",
        items,
        describe_with(
            gettext_noop("Renewals work again"),
            gettext_noop(
                "A renewal has succeeded again, so the renewal outage is over. These certificates were "
                "affected."
            ),
        ),
    )
    return Telling(queued, _composed("renewals_recovered", {"entries": entries, "incident": incident}))


@dataclass
class Telling:
    """How a person hears of an incident's end: chat and webhook messages queued (in the database, sent
    once it commits), and the e-mail, rendered (None: nobody is set to receive alerts, or nothing to say)."""

    queued: int = 0
    email: EmailMultiAlternatives | None = None


def _composed(template: str, context: dict[str, Any]) -> EmailMultiAlternatives | None:
    to = recipients()
    return compose(template, context, to) if to else None


def _close_incident(kind: IncidentKind, now: dt.datetime, tell: Callable[[Incident], Telling | None]) -> bool:
    """Close the open incident of this kind, if there is one, and tell a person once, without losing it.

    The closing, the chat messages and the rendering of the e-mail (which reads the database) happen in
    one transaction: if the database fails on the way, nothing is closed and the next sweep tries again.
    The e-mail is sent after the commit, since sending needs no database, so a database restarting then
    cannot make it sent twice. If the mail server refuses it and no chat message was queued, nobody
    heard: the incident is opened again for the next sweep. (A worker killed between the commit and the
    send still loses it; an outbox row sent by a retrying task would close that gap.) `tell` returns
    None when, asked under the incident's lock, the incident is not over after all: then nothing changes.
    Returns whether it was closed."""
    if not Incident.objects.filter(kind=kind, closed_at=None).exists():
        return False  # the usual case, every sweep: no transaction (on SQLite, no write lock)
    with transaction.atomic():
        incident = Incident.objects.filter(kind=kind, closed_at=None).first()
        if incident is None:
            return False
        now = max(now, incident.opened_at)  # opened during a long sweep that started earlier
        # The claim, and the row's lock until the commit (joining an incident takes it too).
        if not Incident.objects.filter(pk=incident.pk, closed_at=None).update(closed_at=now):
            return False  # another worker closed it
        incident.closed_at = now
        telling = tell(incident)
        if telling is None:
            transaction.set_rollback(True)
            return False
    if telling.email is None or _sent(telling.email) or telling.queued:
        return True
    # Unless a new incident of this kind has opened since: that one will be told, and closed, in its turn.
    with contextlib.suppress(IntegrityError):
        Incident.objects.filter(pk=incident.pk, closed_at=now).update(closed_at=None)
    return False


def _recovery_note(renewed: bool, open_renewal: Order | None) -> str:
    if renewed:
        return gettext_noop("renewed")
    return gettext_noop("renewal in progress") if open_renewal else ""


def _open_incident(
    kind: IncidentKind, now: dt.datetime, members: Callable[[], list[Certificate]] = list
) -> tuple[Incident, bool]:
    """The open incident of this kind, or a new one with the certificates `members` gives; True when this
    call opened it. The database allows one open incident per kind, so two workers noticing the same
    outage at once join one incident. A new incident and its certificates are written together: the
    sweep's `renewal_outage_over` must never see one without its certificates (it would close it)."""
    for _attempt in range(3):
        existing = Incident.objects.filter(kind=kind, closed_at=None).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                incident = Incident.objects.create(kind=kind, opened_at=now)
                incident.certificates.add(*members())
                return incident, True
        except IntegrityError:
            continue  # opened by someone else a moment ago
    raise RuntimeError("Could not open or find the incident")  # pragma: no cover


# --- the scheduler ---------------------------------------------------------------------------------


def scheduler_stopped(
    last_success: dt.datetime | None, now: dt.datetime | None = None, noticed_by: str = "monitor"
) -> bool:
    """The renewal sweep has not run for too long (beat or every worker stopped): open an incident and
    tell a person once per outage. Called by whoever notices, since a stopped scheduler cannot report
    itself: `noticed_by` is "worker" (so beat is the likely cause), "beat" (so no worker takes tasks) or
    "monitor" (the /scheduler endpoint). Returns whether this call opened it."""
    now = now or timezone.now()
    incident, opened = _open_incident(IncidentKind.SCHEDULER_STOPPED, now)
    if not opened:
        return False
    queued = channels.notify_portal(
        "scheduler_stopped",
        "critical",
        describe_with(
            gettext_noop("The scheduler has stopped"),
            gettext_noop(
                "The renewal sweep has not run for too long: nothing is renewed and no expiry alert is sent "
                "until Celery beat and a worker run again."
            ),
        ),
    )
    to = recipients()
    if not to:
        if not queued:
            log.error("The scheduler has stopped but nobody is set to receive alerts.")
    elif (
        not _send_quietly(
            "scheduler_stopped",
            {"incident": incident, "last_success": last_success, "noticed_by": noticed_by},
            to,
        )
        and not queued
    ):
        incident.delete()
        return False
    return True


def scheduler_running(now: dt.datetime | None = None) -> bool:
    """The sweep runs: close the scheduler outage, if one is open, and say so once."""

    def tell(incident: Incident) -> Telling:
        queued = channels.notify_portal(
            "scheduler_running",
            "good",
            describe_with(
                gettext_noop("The scheduler runs again"),
                gettext_noop("The renewal sweep runs again: renewals and alerts have resumed."),
            ),
        )
        return Telling(queued, _composed("scheduler_running", {"incident": incident}))

    return _close_incident(IncidentKind.SCHEDULER_STOPPED, now or timezone.now(), tell)


# --- monthly status --------------------------------------------------------------------------------


def send_monthly_status(now: dt.datetime | None = None, months: int = 3) -> bool:
    """What expires in the coming months (the soonest by name, and how many per month), which renewals
    failed and which certificates expired without a renewal in the last month, by name."""
    now = now or timezone.now()
    queued = _monthly_status_to_channels(now, months)
    to = recipients()
    if not to:
        return queued > 0
    horizon = now + dt.timedelta(days=31 * months)
    upcoming = Certificate.objects.current(now).filter(not_after__lte=horizon)
    # Counted by the database, month by month (in the portal's time zone): the e-mail's size and the
    # job's memory stay the same at any inventory size.
    per_month = {
        timezone.localtime(row["month"]).strftime("%Y-%m"): row["count"]
        for row in upcoming.annotate(month=TruncMonth("not_after"))
        .order_by()
        .values("month")
        .annotate(count=Count("pk"))
    }
    expiring_total = sum(per_month.values())
    per_organisation = list(
        upcoming.exclude(organization=None)
        .order_by()
        .values("organization__name", "organization__cvr")
        .annotate(count=Count("pk"))
        .order_by("-count", "organization__cvr")[:MONTHLY_ORGANISATION_LIMIT]
    )
    expiring = list(
        upcoming.with_situation(now)
        .defer("pem", "chain_pem")
        .order_by("not_after", "pk")[:MONTHLY_LIST_LIMIT]
    )
    failed = list(
        Order.objects.filter(state=OrderState.FAILED, completed_at__gte=now - dt.timedelta(days=31))
        .select_related("certificate")
        .defer("certificate__pem", "certificate__chain_pem", "certificate__private_key_encrypted")
        .order_by("-completed_at")[:MONTHLY_LIST_LIMIT]
    )
    lapsed_all = Certificate.objects.lapsed(now, since=now - dt.timedelta(days=31))
    lapsed_total = lapsed_all.count()
    lapsed = list(lapsed_all.defer("pem", "chain_pem").order_by("not_after", "pk")[:MONTHLY_LIST_LIMIT])
    send(
        "monthly_status",
        {
            "expiring": expiring,
            "expiring_total": expiring_total,
            "expiring_more": expiring_total - len(expiring),
            "per_month": sorted(per_month.items()),
            "per_organisation": per_organisation,
            "failed": failed,
            "lapsed": lapsed,
            "expired_last_month": lapsed_total,
            "lapsed_more": lapsed_total - len(lapsed),
            "months": months,
            "now": now,
        },
        to,
    )
    return True


def _monthly_status_to_channels(now: dt.datetime, months: int) -> int:
    """The monthly status for each channel: a portal-wide channel gets the portal's figures, an
    organisation's channel that organisation's. Returns how many messages were queued."""
    try:
        return _queue_monthly_status(now, months)
    except Exception:  # the e-mail goes out whatever happens here
        log.exception("Could not queue the monthly status for the chat and webhook channels")
        return 0


def _queue_monthly_status(now: dt.datetime, months: int) -> int:
    horizon = now + dt.timedelta(days=31 * months)
    month_ago = now - dt.timedelta(days=31)
    queued = 0
    for channel in channels.channels_for(None):
        scope = Certificate.objects.all()
        if channel.organization_id is not None:
            scope = scope.filter(organization_id=channel.organization_id)
        upcoming = scope.current(now).filter(not_after__lte=horizon)
        figures = {
            "months": months,
            "expiring": upcoming.count(),
            "failed": Order.objects.filter(
                certificate__in=scope, state=OrderState.FAILED, completed_at__gte=month_ago
            ).count(),
            "lapsed": scope.lapsed(now, since=month_ago).count(),
        }
        soonest = [Item(c) for c in upcoming.order_by("not_after", "pk")[: channels.MAX_ITEMS]]
        with translation.override(settings.TRUSTVIEW_EMAIL_LANGUAGE):
            content = channels.build_content(
                "monthly_status",
                "info",
                gettext("Monthly certificate status"),
                gettext(
                    "In the next %(months)s months %(expiring)s certificates expire (the soonest are "
                    "listed). In the last month %(failed)s renewals failed and %(lapsed)s certificates "
                    "expired without a renewal."
                )
                % figures,
                soonest,
            )
        channels.queue(channel, "monthly_status", content)
        queued += 1
    return queued


# --- test e-mail -----------------------------------------------------------------------------------


class TestEmailFailed(Exception):
    """The test e-mail could not be sent; the message is a sentence for the administrator, without the
    mail server's address or credentials."""


def send_test_email(sent_by: str) -> list[str]:
    """Send a test e-mail to the recipients in effect and return them. Raises TestEmailFailed."""
    to = recipients()
    if not to:
        raise TestEmailFailed(gettext_noop("Nobody receives alerts: add a recipient first."))
    try:
        send("test_email", {"sent_by": sent_by}, to)
    except OSError as error:
        log.warning("The test e-mail could not be sent", exc_info=True)
        raise TestEmailFailed(_mail_error(error)) from None
    return to


def _mail_error(error: OSError) -> str:
    """The mail server's answer, without anything secret: the configured user name, password and host
    are blanked wherever they appear."""
    text = f"{type(error).__name__}: {error}"
    for secret in (settings.EMAIL_HOST_PASSWORD, settings.EMAIL_HOST_USER, settings.EMAIL_HOST):
        if secret:
            text = text.replace(str(secret), "…")
    return text[:300]
