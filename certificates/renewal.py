"""Renewing and blocking certificates through their CA, one safe step at a time.

Each step re-reads its rows and can run twice: an order's next step is claimed with a conditional update
(a lease on `next_attempt_at`, whose value also fences what the step writes back), the certificate is
re-checked at every step, the CA gets the order's idempotency key on every request, and the database
allows one open renewal per certificate. A lost task message or a killed worker only delays the next
step until its lease runs out and the sweep finds it.
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
from django.db.models import QuerySet
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

# Never ask the CA again later than this before the certificate expires (or a tenth of what is left, if
# that is less): the answer must still arrive, and the new certificate be stored, while the old is valid.
EXPIRY_MARGIN = dt.timedelta(minutes=5)
# Closer to the last useful moment than this, another try is not worth scheduling.
MIN_STEP = dt.timedelta(seconds=1)


def lease() -> dt.timedelta:
    """How long a worker owns an order step before another may take it (a killed worker's step is then
    retried): TRUSTVIEW_ORDER_LEASE_SECONDS, longer than a CA call can take."""
    return dt.timedelta(seconds=settings.TRUSTVIEW_ORDER_LEASE_SECONDS)


class RenewalNotPossible(Exception):
    """Renewal cannot start; the message says why and what to do instead."""


class BlockNotPossible(Exception):
    """Blocking failed or cannot be done here; the message says why and what to do instead."""


# --- starting a renewal --------------------------------------------------------------------------------


def request_renewal(certificate: Certificate, actor: Actor) -> tuple[Order, bool]:
    """Open a renewal order (or find the one already open). The caller hands a new order to a worker
    (certificates.tasks.queue_order_on_commit).

    `certificate` may be a stale copy (read by a view or the sweep before a renewal superseded it): the
    decision is taken on the row as it is now, locked until the order exists, so a superseded, blocked
    or expired certificate never gets an order, whatever the caller read.

    Returns (order, created). Raises RenewalNotPossible with a sentence when renewal cannot start.
    """
    user = actor if isinstance(actor, User) else None
    label = user.get_username() if user is not None else (actor if isinstance(actor, str) else SCHEDULER)
    try:
        with transaction.atomic():
            # The same row lock as _complete takes before it supersedes the certificate (on SQLite the
            # transaction itself is the lock: settings make it BEGIN IMMEDIATE).
            current = (
                Certificate.objects.select_for_update(of=("self",))
                .select_related("organization")
                .defer("pem", "chain_pem")
                .get(pk=certificate.pk)
            )
            existing = current.open_renewal()
            if existing is not None:
                return existing, False
            reason = current.renewal_blocker()
            if reason:
                raise RenewalNotPossible(reason)
            order = Order.objects.create(
                certificate=current, kind=OrderKind.RENEW, requested_by=user, requested_by_label=label
            )
            record_event(
                current,
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
    this call's to take, or another worker took it over after this one's lease ran out).
    """
    now = now or timezone.now()
    held_until = now + lease()
    claimed = Order.objects.due(now).filter(pk=order_id).update(next_attempt_at=held_until)
    if not claimed:
        return None
    order = Order.objects.select_related("certificate", "certificate__organization").get(pk=order_id)
    certificate = order.certificate
    issuer = issuer_for(certificate)
    # Re-checked at every step, on the row as it is now: a certificate superseded, blocked or expired
    # since the order opened is never sent to the CA again.
    if (
        certificate.state != LifecycleState.ACTIVE
        or certificate.not_after <= now
        or issuer is None
        or not certificate.has_private_key
    ):
        _fail(
            order,
            "not_renewable",
            certificate.renewal_blocker(now) or _("The certificate cannot be renewed."),
            # Superseded: a renewal exists, so nobody has anything to do.
            alert=certificate.state != LifecycleState.SUPERSEDED,
        )
        return None
    try:
        if order.ca_order_id:
            answer = issuer.order_status(certificate, order.ca_order_id)
        else:
            answer = issuer.request_renewal(certificate, idempotency_key=str(order.idempotency_key))
    except IssuerError as error:
        if error.transient:
            return _retry_later(order, error, now, held_until)
        _fail(order, error.code, error.sentence)
        return None
    if answer.status == "issued" and answer.bundle is not None:
        _complete(order, answer.bundle, issuer.name)
        return None
    wait = min(max(answer.retry_after or settings.TRUSTVIEW_POLL_SECONDS, 1.0), 3600.0)
    at = next_step_at(certificate, now, wait)
    if at is None:
        _expires_first(order, _("The CA was still working on the renewal."))
        return None
    # Fenced by the lease: a worker that lost it (it ran out during a slow call) writes nothing back.
    if not _held(order, held_until).update(
        state=OrderState.IN_PROGRESS,
        ca_order_id=answer.order_id,
        attempts=0,
        last_error_code="",
        last_error="",
        next_attempt_at=at,
    ):
        return None
    return (at - now).total_seconds()


def _held(order: Order, held_until: dt.datetime) -> QuerySet[Order]:
    """The order, if it is still open and still leased to this step."""
    return Order.objects.filter(pk=order.pk, state__in=OPEN_ORDER_STATES, next_attempt_at=held_until)


def next_step_at(certificate: Certificate, now: dt.datetime, wait: float) -> dt.datetime | None:
    """When to take an order's next step, `wait` seconds from now but never after the last useful moment
    before the certificate expires (EXPIRY_MARGIN, or a tenth of what is left); None when no useful
    moment is left."""
    left = certificate.not_after - now
    last_useful = certificate.not_after - min(EXPIRY_MARGIN, left / 10)
    wanted = now + dt.timedelta(seconds=wait)
    if wanted <= last_useful:
        return wanted
    if last_useful - now >= MIN_STEP:
        return last_useful
    return None


def backoff_seconds(failures: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, capped; never sooner than the CA's Retry-After."""
    base, cap = settings.TRUSTVIEW_RETRY_BASE_SECONDS, settings.TRUSTVIEW_RETRY_CAP_SECONDS
    ceiling = min(cap, base * 2 ** max(failures - 1, 0))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after or 0.0)


def _retry_later(order: Order, error: IssuerError, now: dt.datetime, held_until: dt.datetime) -> float | None:
    failures = order.attempts + 1
    at = next_step_at(order.certificate, now, backoff_seconds(failures, error.retry_after))
    if at is None:
        _expires_first(order, error.sentence)
        return None
    if not _held(order, held_until).update(
        attempts=failures,
        last_error_code=error.code,
        last_error=error.sentence,
        next_attempt_at=at,
    ):
        return None
    wait = (at - now).total_seconds()
    log.warning("Renewal order %s: %s (failure %s); next try in %.0f s", order.pk, error.code, failures, wait)
    # Keeps failing: tell a person once, and keep trying.
    if failures >= settings.TRUSTVIEW_ALERT_AFTER_FAILURES and Order.objects.filter(
        pk=order.pk, alerted=False
    ).update(alerted=True):
        order.refresh_from_db()
        alerts.renewal_keeps_failing(order)
    return wait


def _expires_first(order: Order, last_answer: str) -> None:
    """No useful moment is left to ask the CA again before the certificate expires: the order ends."""
    _fail(
        order,
        "expires_before_retry",
        _(
            "The certificate expires before the CA could be asked again, so it was not renewed. The CA's "
            "last answer: %(answer)s"
        )
        % {"answer": last_answer},
    )


def _fail(order: Order, code: str, sentence: str, *, alert: bool = True) -> None:
    """A permanent failure: the order ends, the history says why, and a person hears at once (unless
    `alert` is False: nobody has anything to do)."""
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
    if alert:
        alerts.renewal_failed(order)


def _complete(order: Order, bundle: Bundle, issuer_name: str) -> None:
    """Store the CA's new certificate and close the order, once: a second worker with the same answer,
    or a certificate that is already stored (imported, or stored by a step that died after its
    commit), completes the order with that certificate instead of failing on it."""
    with transaction.atomic():
        if not Order.objects.filter(pk=order.pk, state__in=OPEN_ORDER_STATES).select_for_update().exists():
            return  # another worker completed it
        # The lock request_renewal takes: no order opens for the old certificate while it is superseded.
        old = Certificate.objects.select_for_update().get(pk=order.certificate_id)
        (outcome,) = store_bundle(
            bundle,
            source=Source(old.source),
            # The history names who asked: the person who clicked Renew now, or the scheduler.
            actor=order.requested_by or order.requested_by_label or SCHEDULER,
            event_kind=EventKind.RENEWED,
            message=gettext_noop("Issued by %(issuer)s as the renewal of serial %(serial)s."),
            issuer=issuer_name,
            serial=old.serial_number_display,
        )
        # As the renewal chain left it (store_bundle links OCES certificates by their UUID).
        new = Certificate.objects.get(pk=outcome.certificate.pk)
        if new.renewed_from_id is None and not Certificate.objects.filter(renewed_from=old).exists():
            # Not an OCES certificate (no UUID to link by): link it explicitly.
            Certificate.objects.filter(pk=new.pk).update(renewed_from=old)
            Certificate.objects.filter(pk=old.pk, state=LifecycleState.ACTIVE).update(
                state=LifecycleState.SUPERSEDED
            )
            new.renewed_from = old
            signals.certificate_superseded.send(sender=Certificate, old=old, new=new)
        if outcome.created:
            new.auto_renew, new.renew_before = old.auto_renew, old.renew_before
            new.save(update_fields=["auto_renew", "renew_before", "updated_at"])
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
    opened: list[int] = []
    # Ids only: request_renewal decides on the row it locks, so the PEM, chain and key of every due
    # certificate need not travel here first (a reference by primary key is all it needs).
    for pk in Certificate.objects.due_for_renewal(now).values_list("pk", flat=True):
        try:
            order, created = request_renewal(Certificate(pk=pk), SCHEDULER)
        except RenewalNotPossible as refusal:
            log.info("Certificate %s is due but cannot be renewed: %s", pk, refusal)
            continue
        if created:
            opened.append(order.pk)
    # The orders just opened are due at once, but their next_attempt_at (their creation) is later than
    # `now`: listed by id, or their first step would wait for the next sweep.
    due = list(Order.objects.due(now).values_list("pk", flat=True))
    due += sorted(set(opened) - set(due))
    # Proof of life for /readyz: beat sent the sweep, a worker ran it, and the database took it.
    SchedulerHeartbeat.record(SchedulerHeartbeat.RENEWAL_SWEEP)
    return SweepResult(opened=len(opened), due_orders=due)


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
