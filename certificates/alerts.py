"""E-mail to the people who look after certificates: expiry alerts, failed renewals, a monthly status.

Each e-mail is a template triplet under templates/email/: NAME_subject.txt, NAME.txt and NAME.html.
Every certificate alert is written to that certificate's history.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from .choices import EventKind, OrderState
from .models import Certificate, ExpiryAlert, NotificationSettings, Order
from .services import SCHEDULER, record_event

log = logging.getLogger(__name__)


def recipients() -> list[str]:
    """The recipients set in the portal, else TRUSTVIEW_ALERT_EMAILS, else every active administrator
    with an e-mail address."""
    configured = NotificationSettings.load().recipients or [a for a in settings.TRUSTVIEW_ALERT_EMAILS if a]
    if configured:
        return list(configured)
    users = get_user_model().objects.filter(is_active=True, is_superuser=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def send(template: str, context: dict[str, Any], to: list[str]) -> None:
    """Render a subject/text/HTML triplet and send it. Raises on a mail server error."""
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
    message.send()


def _one_line(text: str) -> str:
    """A subject is plain text (its template does not HTML-escape) on one line: control characters from a
    certificate's name become spaces, so no header can be injected or broken."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())


# --- expiry ----------------------------------------------------------------------------------------


def thresholds() -> list[int]:
    """Days before expiry at which to alert, largest first: set in the portal, else in the environment
    (default 30 and 14)."""
    configured = NotificationSettings.load().thresholds_days or settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS
    return sorted({int(days) for days in configured}, reverse=True)


def send_expiry_alerts(now: dt.datetime | None = None) -> int:
    """Alert once per (certificate, threshold) crossed, however late the run: crossing, not equality.

    One query finds the certificates that crossed a threshold they have no alert for. When a run was
    missed and several thresholds were crossed at once, one e-mail names the most urgent, and every
    crossed threshold is recorded. Returns the number of e-mails sent.
    """
    now = now or timezone.now()
    levels = thresholds()
    if not levels:
        return 0
    to = recipients()
    if not to:
        log.warning("Expiry alerts are due but nobody is set to receive them (TRUSTVIEW_ALERT_EMAILS).")
        return 0
    needs_alert = Q()
    for days in levels:
        sent = ExpiryAlert.objects.filter(certificate=OuterRef("pk"), threshold_days=days)
        needs_alert |= Q(~Exists(sent), not_after__lte=now + dt.timedelta(days=days))
    due = Certificate.objects.current(now).filter(needs_alert)
    count = 0
    for certificate in due.select_related("organization"):
        crossed = [days for days in levels if certificate.not_after <= now + dt.timedelta(days=days)]
        try:
            with transaction.atomic():
                # The rows first: if the mail server fails, they roll back and the next run tries again.
                ExpiryAlert.objects.bulk_create(
                    [
                        ExpiryAlert(certificate=certificate, threshold_days=days, recipients=to)
                        for days in crossed
                    ],
                    ignore_conflicts=True,
                )
                _send_expiry_alert(certificate, min(crossed), levels, to, now)
        except IntegrityError:
            continue
        except OSError:
            log.exception(
                "Could not send the expiry alert for certificate %s; will try again", certificate.pk
            )
            continue
        count += 1
    return count


def _send_expiry_alert(
    certificate: Certificate, threshold: int, levels: list[int], to: list[str], now: dt.datetime
) -> None:
    critical = threshold == min(levels)
    days_left = (certificate.not_after - now).days
    send(
        "expiry_alert",
        {
            "certificate": certificate,
            "days_left": days_left,
            "critical": critical,
            "threshold": threshold,
            "renewal_blocker": certificate.renewal_blocker(now),
            "open_renewal": certificate.open_renewal(),
        },
        to,
    )
    record_event(
        certificate,
        EventKind.ALERT_SENT,
        SCHEDULER,
        gettext_noop("Critical alert sent: expires in %(days)s days.")
        if critical
        else gettext_noop("Expiry alert sent: expires in %(days)s days."),
        days=days_left,
        threshold_days=threshold,
        recipients=to,
    )


# --- renewal failures ------------------------------------------------------------------------------


def renewal_failed(order: Order) -> None:
    """A renewal failed for good: tell a person at once, with what to do."""
    _order_alert("renewal_failed", order, gettext_noop("Alert sent: renewal failed."), {})


def renewal_keeps_failing(order: Order) -> None:
    """A renewal keeps failing for a passing reason: tell a person once; the portal keeps trying."""
    _order_alert(
        "renewal_failing",
        order,
        gettext_noop("Alert sent: renewal keeps failing (%(attempts)s attempts)."),
        {"attempts": order.attempts},
    )


def _order_alert(template: str, order: Order, event_message: str, detail: dict[str, Any]) -> None:
    to = recipients()
    if not to:
        log.error("Renewal order %s needs attention but nobody is set to receive alerts.", order.pk)
        return
    try:
        send(template, {"order": order, "certificate": order.certificate}, to)
    except OSError:
        log.exception("Could not send the alert for renewal order %s", order.pk)
        return
    record_event(
        order.certificate,
        EventKind.ALERT_SENT,
        SCHEDULER,
        event_message,
        order=order.pk,
        recipients=to,
        **detail,
    )


# --- monthly status --------------------------------------------------------------------------------


def send_monthly_status(now: dt.datetime | None = None, months: int = 3) -> bool:
    """What expires in the coming months, and which renewals failed in the last month."""
    now = now or timezone.now()
    to = recipients()
    if not to:
        return False
    horizon = now + dt.timedelta(days=31 * months)
    expiring = list(
        Certificate.objects.current(now)
        .filter(not_after__lte=horizon)
        .select_related("organization")
        .order_by("not_after")
    )
    failed = list(
        Order.objects.filter(state=OrderState.FAILED, completed_at__gte=now - dt.timedelta(days=31))
        .select_related("certificate")
        .order_by("-completed_at")
    )
    expired = Certificate.objects.lapsed(now, since=now - dt.timedelta(days=31)).count()
    send(
        "monthly_status",
        {"expiring": expiring, "failed": failed, "expired_last_month": expired, "months": months, "now": now},
        to,
    )
    return True
