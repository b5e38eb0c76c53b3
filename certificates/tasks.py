"""Celery tasks: thin wrappers that take an id (or nothing), re-read the rows, and call a service.

This is the only module of `certificates` that knows Celery. Services say when they want to be called
again (an order step returns its delay; the sweep returns the due order steps) and the tasks queue it.
Every task is safe to run twice; the schedule is CELERY_BEAT_SCHEDULE in settings.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.db import transaction

from . import alerts, channels, renewal, revocation
from .models import ExpiryTally
from .signals import channel_message_queued

log = logging.getLogger(__name__)


def queue_order(order_id: int, delay: float = 0) -> None:
    """Hand an order step to a worker. If the broker is down, the sweep finds the order later."""
    try:
        process_order.apply_async((order_id,), countdown=max(0.0, delay))
    except Exception:  # the database is the truth; a lost message only delays the step
        log.warning("Could not queue order %s; the sweep will pick it up", order_id, exc_info=True)


def queue_order_on_commit(order_id: int) -> None:
    """Queue an order's first step once the transaction that opened it has committed (the one way a
    view hands work to a worker)."""
    transaction.on_commit(lambda: queue_order(order_id))


@shared_task(name="certificates.tasks.sweep")
def sweep() -> dict[str, int]:
    result = renewal.sweep()
    for order_id in result.due_orders:
        queue_order(order_id)
    alerts.after_sweep()  # lapses, late renewals, the scheduler running again
    for message_id in channels.overdue():  # channel messages whose task was lost
        queue_channel_message(message_id=message_id)
    ExpiryTally.settle()  # the dashboard's counts per day: fold what changed since the last sweep
    return {"opened": result.opened, "queued": len(result.due_orders)}


@shared_task(name="certificates.tasks.process_order")
def process_order(order_id: int) -> None:
    again_in = renewal.advance_order(order_id)
    if again_in is not None:
        queue_order(order_id, delay=again_in)


@shared_task(name="certificates.tasks.send_expiry_alerts")
def send_expiry_alerts() -> int:
    return alerts.send_expiry_alerts()


@shared_task(name="certificates.tasks.send_monthly_status")
def send_monthly_status() -> bool:
    return alerts.send_monthly_status()


@shared_task(name="certificates.tasks.check_revocation")
def check_revocation() -> int:
    return revocation.check_all()


@shared_task(name="certificates.tasks.deliver_channel_message", bind=True, max_retries=None)
def deliver_channel_message(self: Task, message_id: int) -> None:
    """Post one alert to one chat or webhook channel. A passing failure (time-out, no connection, 5xx,
    429) is retried with exponential backoff and jitter, or after the receiver's Retry-After, until
    TRUSTVIEW_CHANNEL_ATTEMPTS attempts (counted in the row). Each channel's delivery is a task of its
    own."""
    again_in = channels.deliver(message_id)
    if again_in is not None:
        raise self.retry(countdown=again_in)


def queue_channel_message(sender: Any = None, message_id: int = 0, **kwargs: Any) -> None:
    """Hand a channel message to a worker (channel_message_queued, sent after the commit)."""
    try:
        deliver_channel_message.apply_async((message_id,))
    except Exception:  # a broker outage must not break the alert that wrote the message
        log.warning("Could not queue alert channel message %s", message_id, exc_info=True)


channel_message_queued.connect(queue_channel_message, dispatch_uid="certificates.tasks.channel_messages")
