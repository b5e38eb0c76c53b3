"""Renewing and blocking certificates through their CA, one safe step at a time.

Each step re-reads its rows and can run twice: an order's next step is claimed with a conditional update
(a lease on `next_attempt_at`), the CA gets the order's idempotency key on every request, and the
database allows one open renewal per certificate. A lost task message or a killed worker only delays
the next step until the sweep finds it.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from . import alerts, signals
from .choices import OPEN_ORDER_STATES, EventKind, LifecycleState, OrderKind, OrderState, Source
from .issuers import IssuerError, issuer_for
from .models import RENEWAL_NOT_ENABLED, Certificate, Order, Organization, SchedulerHeartbeat
from .services import SCHEDULER, Actor, record_event, store_bundle
from .x509 import Bundle

log = logging.getLogger(__name__)

# How long a worker owns an order step before another may take it (a killed worker's step is retried).
LEASE = dt.timedelta(minutes=2)


class RenewalNotPossible(Exception):
    """Renewal cannot start; the message says why and what to do instead."""


class BlockNotPossible(Exception):
    """Blocking failed or cannot be done here; the message says why and what to do instead."""


# --- starting a renewal --------------------------------------------------------------------------------


def request_renewal(certificate: Certificate, actor: Actor) -> tuple[Order, bool]:
    """Open a renewal order (or find the one already open). The caller hands a new order to a worker
    (certificates.tasks.queue_order_on_commit).

    Returns (order, created). Raises RenewalNotPossible with a sentence when renewal cannot start.
    """
    existing = certificate.open_renewal()
    if existing is not None:
        return existing, False
    reason = certificate.renewal_blocker()
    if reason:
        raise RenewalNotPossible(reason)
    user = actor if isinstance(actor, User) else None
    label = user.get_username() if user is not None else (actor if isinstance(actor, str) else SCHEDULER)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                certificate=certificate, kind=OrderKind.RENEW, requested_by=user, requested_by_label=label
            )
            record_event(
                certificate,
                EventKind.RENEWAL_REQUESTED,
                actor,
                gettext_noop("Renewal requested."),
                order=order.pk,
            )
    except IntegrityError:
        # Someone else (another click, the scheduler) opened it a moment ago: that is the one.
        existing = certificate.open_renewal()
        if existing is None:
            raise
        return existing, False
    return order, True


# --- one step of an order ------------------------------------------------------------------------------


def advance_order(order_id: int, now: dt.datetime | None = None) -> float | None:
    """Take the next step of an open order, if it is due and no other worker holds it.

    Returns in how many seconds the order wants its next step, or None when it is finished (or was not
    this call's to take).
    """
    now = now or timezone.now()
    claimed = Order.objects.due(now).filter(pk=order_id).update(next_attempt_at=now + LEASE)
    if not claimed:
        return None
    order = Order.objects.select_related("certificate", "certificate__organization").get(pk=order_id)
    certificate = order.certificate
    issuer = issuer_for(certificate)
    if certificate.state == LifecycleState.BLOCKED or certificate.not_after <= now or issuer is None:
        _fail(
            order,
            "not_renewable",
            certificate.renewal_blocker(now) or _("The certificate cannot be renewed."),
        )
        return None
    try:
        if order.ca_order_id:
            answer = issuer.order_status(certificate, order.ca_order_id)
        else:
            answer = issuer.request_renewal(certificate, idempotency_key=str(order.idempotency_key))
    except IssuerError as error:
        if error.transient:
            return _retry_later(order, error, now)
        _fail(order, error.code, error.sentence)
        return None
    if answer.status == "issued" and answer.bundle is not None:
        _complete(order, answer.bundle, issuer.name)
        return None
    wait = min(max(answer.retry_after or settings.TRUSTVIEW_POLL_SECONDS, 1.0), 3600.0)
    Order.objects.filter(pk=order.pk).update(
        state=OrderState.IN_PROGRESS,
        ca_order_id=answer.order_id,
        attempts=0,
        last_error_code="",
        last_error="",
        next_attempt_at=now + dt.timedelta(seconds=wait),
    )
    return wait


def backoff_seconds(failures: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, capped; never sooner than the CA's Retry-After."""
    base, cap = settings.TRUSTVIEW_RETRY_BASE_SECONDS, settings.TRUSTVIEW_RETRY_CAP_SECONDS
    ceiling = min(cap, base * 2 ** max(failures - 1, 0))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after or 0.0)


def _retry_later(order: Order, error: IssuerError, now: dt.datetime) -> float:
    failures = order.attempts + 1
    wait = backoff_seconds(failures, error.retry_after)
    Order.objects.filter(pk=order.pk).update(
        attempts=failures,
        last_error_code=error.code,
        last_error=error.sentence,
        next_attempt_at=now + dt.timedelta(seconds=wait),
    )
    log.warning("Renewal order %s: %s (failure %s); next try in %.0f s", order.pk, error.code, failures, wait)
    # Keeps failing: tell a person once, and keep trying.
    if failures >= settings.TRUSTVIEW_ALERT_AFTER_FAILURES and Order.objects.filter(
        pk=order.pk, alerted=False
    ).update(alerted=True):
        order.refresh_from_db()
        alerts.renewal_keeps_failing(order)
    return wait


def _fail(order: Order, code: str, sentence: str) -> None:
    """A permanent failure: the order ends, the history says why, and a person hears at once."""
    with transaction.atomic():
        updated = Order.objects.filter(pk=order.pk, state__in=OPEN_ORDER_STATES).update(
            state=OrderState.FAILED, last_error_code=code, last_error=sentence, completed_at=timezone.now()
        )
        if not updated:
            return
        record_event(
            order.certificate,
            EventKind.RENEWAL_FAILED,
            SCHEDULER,
            "%(reason)s",
            reason=sentence,
            order=order.pk,
            code=code,
        )
        if code == RENEWAL_NOT_ENABLED and order.certificate.organization_id:
            Organization.objects.filter(pk=order.certificate.organization_id).update(renewal_enabled=False)
    order.refresh_from_db()
    log.error("Renewal order %s failed: %s", order.pk, code)
    alerts.renewal_failed(order)


def _complete(order: Order, bundle: Bundle, issuer_name: str) -> None:
    old = order.certificate
    with transaction.atomic():
        if not Order.objects.filter(pk=order.pk, state__in=OPEN_ORDER_STATES).select_for_update().exists():
            return  # another worker completed it
        (outcome,) = store_bundle(
            bundle,
            source=Source(old.source),
            actor=SCHEDULER,
            event_kind=EventKind.RENEWED,
            message=gettext_noop("Issued by %(issuer)s as the renewal of serial %(serial)s."),
            issuer=issuer_name,
            serial=old.serial_number_display,
        )
        new = outcome.certificate
        if new.renewed_from_id is None:
            # Not an OCES certificate (no UUID to link by): link it explicitly.
            new.renewed_from = old
            Certificate.objects.filter(pk=old.pk, state=LifecycleState.ACTIVE).update(
                state=LifecycleState.SUPERSEDED
            )
        new.auto_renew, new.renew_before = old.auto_renew, old.renew_before
        new.save()
        Order.objects.filter(pk=order.pk).update(
            state=OrderState.ISSUED,
            new_certificate=new,
            completed_at=timezone.now(),
            last_error="",
            last_error_code="",
        )
        if old.organization_id:
            Organization.objects.filter(pk=old.organization_id).update(renewal_enabled=True)
        signals.certificate_renewed.send(sender=Certificate, old=old, new=new)
    log.info("Renewal order %s issued certificate %s", order.pk, new.serial_number)
    alerts.renewals_recovered()


def retry_after_renewal_enabled(certificate: Certificate, actor: Actor) -> tuple[Order, bool]:
    """Digst has enabled renewal for the certificate's organisation (the person says so): forget the
    refusal and renew now. Raises RenewalNotPossible when something else still stands in the way."""
    if certificate.organization_id is not None:
        Organization.objects.filter(pk=certificate.organization_id, renewal_enabled=False).update(
            renewal_enabled=None
        )
        certificate.organization.renewal_enabled = None  # type: ignore[union-attr]
    return request_renewal(certificate, actor)


# --- the sweep -----------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    opened: int
    due_orders: list[int]


def sweep(now: dt.datetime | None = None) -> SweepResult:
    """Open renewal orders for every certificate that is due, and list every order step that is due
    (the new orders among them) for the caller to hand to workers.

    One query finds what is due, whatever the inventory size (renew_at is indexed); a second finds the
    order steps that are due, including those of a worker that died holding them.
    """
    now = now or timezone.now()
    opened = 0
    for certificate in Certificate.objects.due_for_renewal(now).select_related("organization"):
        try:
            _order, created = request_renewal(certificate, SCHEDULER)
        except RenewalNotPossible as refusal:
            log.info("Certificate %s is due but cannot be renewed: %s", certificate.pk, refusal)
            continue
        opened += created
    due = list(Order.objects.due(now).values_list("pk", flat=True))
    # Proof of life for /readyz: beat sent the sweep, a worker ran it, and the database took it.
    SchedulerHeartbeat.record(SchedulerHeartbeat.RENEWAL_SWEEP)
    return SweepResult(opened=opened, due_orders=due)


# --- blocking ------------------------------------------------------------------------------------------


def block_certificate(certificate: Certificate, actor: Actor) -> None:
    """Block (revoke) a certificate at its CA, then everywhere in the portal. Irreversible."""
    if certificate.state == LifecycleState.BLOCKED:
        return
    refusal = certificate.block_blocker()
    issuer = issuer_for(certificate)
    if refusal or issuer is None:
        raise BlockNotPossible(refusal or _("No connected CA issued this certificate."))
    try:
        issuer.block(
            certificate, idempotency_key=str(uuid.uuid5(uuid.NAMESPACE_OID, certificate.fingerprint_sha256))
        )
    except IssuerError as error:
        raise BlockNotPossible(error.sentence) from None
    mark_blocked(
        certificate,
        actor,
        order_error=gettext_noop("The certificate was blocked."),
        message=gettext_noop("Blocked at %(issuer)s. This cannot be undone."),
        issuer=issuer.name,
    )


def mark_blocked(
    certificate: Certificate, actor: Actor, *, order_error: str, message: str, **detail: Any
) -> bool:
    """Record that a certificate is blocked at its CA: its state, its open orders (they fail with
    `order_error`), and its history (`message` with `detail`, see Event.text). Returns False when it was
    already marked blocked; then nothing changes."""
    with transaction.atomic():
        if not (
            Certificate.objects.filter(pk=certificate.pk)
            .exclude(state=LifecycleState.BLOCKED)
            .update(state=LifecycleState.BLOCKED, updated_at=timezone.now())
        ):
            return False
        certificate.state = LifecycleState.BLOCKED
        Order.objects.open().filter(certificate=certificate).update(
            state=OrderState.FAILED,
            last_error_code="certificate_blocked",
            last_error=order_error,
            completed_at=timezone.now(),
        )
        record_event(certificate, EventKind.BLOCKED, actor, message, **detail)
    return True
