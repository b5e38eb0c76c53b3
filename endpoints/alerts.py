"""E-mail about endpoints and registrations, through certificates' alert e-mail (same recipients, same
template triplets under templates/email/):

- a problem at an endpoint, once, when it is due (at once; a superseded certificate still served: after
  TRUSTVIEW_DEPLOYMENT_GRACE_SECONDS), and once more when a later scan shows it fixed;
- open registration checklist items, at most once a day while any stays open.

Each e-mail is claimed in the database before it is sent (a conditional update, or a unique row), so two
runs at once send it once; when the mail server fails, the claim is given up and the next run tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from certificates.alerts import recipients, send
from certificates.choices import EventKind
from certificates.services import SCHEDULER, record_event

from .choices import ProblemKind
from .models import Problem, RegistrationReminder
from .services import open_items

log = logging.getLogger(__name__)


def tell(now: dt.datetime | None = None) -> dict[str, int]:
    """Send the due problem alerts and the notices of problems that cleared. Returns how many of each."""
    now = now or timezone.now()
    return {"alerted": send_problem_alerts(now), "cleared": send_cleared_notices(now)}


def send_problem_alerts(now: dt.datetime | None = None) -> int:
    """One e-mail listing every open problem that is due and not yet told."""
    now = now or timezone.now()
    due = list(
        Problem.objects.filter(alerted_at=None, closed_at=None, due_at__lte=now)
        .select_related("endpoint", "certificate")
        .order_by("endpoint__host", "endpoint__port", "kind")
    )
    claimed = [p for p in due if Problem.objects.filter(pk=p.pk, alerted_at=None).update(alerted_at=now)]
    return _send(
        claimed, "endpoint_alert", "alerted_at", gettext_noop("Alert sent: %(problem)s at %(endpoint)s.")
    )


def send_cleared_notices(now: dt.datetime | None = None) -> int:
    """One e-mail listing the problems that were told and have since cleared."""
    now = now or timezone.now()
    cleared = list(
        Problem.objects.filter(closed_at__isnull=False, alerted_at__isnull=False, cleared_told_at=None)
        .select_related("endpoint", "certificate")
        .order_by("endpoint__host", "endpoint__port", "kind")
    )
    claimed = [
        p
        for p in cleared
        if Problem.objects.filter(pk=p.pk, cleared_told_at=None).update(cleared_told_at=now)
    ]
    return _send(
        claimed, "endpoint_cleared", "cleared_told_at", gettext_noop("Cleared: %(problem)s at %(endpoint)s.")
    )


def _send(problems: list[Problem], template: str, claim: str, event_message: str) -> int:
    if not problems:
        return 0
    to = recipients()
    if not to:
        log.error(
            "%s endpoint problem(s) to tell (%s) but nobody is set to receive alerts.",
            len(problems),
            template,
        )
        return 0
    try:
        send(template, {"problems": problems}, to)
    except OSError:
        log.exception("Could not send the %s e-mail; the next run tries again", template)
        Problem.objects.filter(pk__in=[p.pk for p in problems]).update(**{claim: None})
        return 0
    for problem in problems:
        if problem.certificate is not None:
            record_event(
                problem.certificate,
                EventKind.ALERT_SENT,
                SCHEDULER,
                event_message,
                problem=_english(problem.kind),
                endpoint=str(problem.endpoint),
                recipients=to,
            )
    return len(problems)


def send_registration_reminder(now: dt.datetime | None = None) -> int:
    """Remind of open registration checklist items: one e-mail listing each current certificate with open
    items that was not reminded of today (its (certificate, day) row is the claim). Returns how many
    certificates it listed (0: none open, or all reminded today already)."""
    now = now or timezone.now()
    items = open_items(now)
    if not items:
        return 0
    to = recipients()
    if not to:
        log.error("%s registration item(s) are open but nobody is set to receive alerts.", len(items))
        return 0
    day = timezone.localdate(now)
    entries: dict[int, dict[str, Any]] = {}
    claims: list[int] = []
    for item in items:
        if item.certificate_id not in entries:
            try:
                with transaction.atomic():
                    claim = RegistrationReminder.objects.create(certificate=item.certificate, day=day)
            except IntegrityError:
                entries[item.certificate_id] = {}  # reminded today already
                continue
            claims.append(claim.pk)
            entries[item.certificate_id] = {"certificate": item.certificate, "places": []}
        if entries[item.certificate_id]:
            entries[item.certificate_id]["places"].append(item.place)
    listed = [entry for entry in entries.values() if entry]
    if not listed:
        return 0
    try:
        send("registration_reminder", {"entries": listed}, to)
    except OSError:
        log.exception("Could not send the registration reminder; the next run tries again")
        RegistrationReminder.objects.filter(pk__in=claims).delete()
        return 0
    return len(listed)


def _english(kind: str) -> str:
    """The problem's name in English: history entries are stored in English and translated when shown."""
    with translation.override("en"):
        return str(ProblemKind(kind).label)
