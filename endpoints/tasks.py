"""Celery tasks of the endpoints app: thin wrappers that call a service. The only module of `endpoints`
that knows Celery; the schedule is CELERY_BEAT_SCHEDULE in settings."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from . import alerts, services

log = logging.getLogger(__name__)


@shared_task(name="endpoints.tasks.scan_due")
def scan_due() -> dict[str, int]:
    """Scan the endpoints that are due, then send the alerts that are due (and the cleared notices)."""
    scanned = services.scan_due()
    return {"scanned": scanned, **alerts.tell()}


@shared_task(name="endpoints.tasks.tell")
def tell() -> dict[str, int]:
    return alerts.tell()


@shared_task(name="endpoints.tasks.send_registration_reminder")
def send_registration_reminder() -> int:
    return alerts.send_registration_reminder()


def _queue(task: object) -> None:
    try:
        task.delay()  # type: ignore[attr-defined]
    except Exception:  # the database is the truth: the next scheduled run does it
        log.warning("Could not queue %s; the next scheduled run does it", task, exc_info=True)


def scan_due_on_commit() -> None:
    """Scan what is due as soon as the transaction commits (after a renewal marked endpoints due)."""
    transaction.on_commit(lambda: _queue(scan_due))


def tell_on_commit() -> None:
    """Send what a scan made due (a scan from the endpoint's page) once its transaction commits."""
    transaction.on_commit(lambda: _queue(tell))


def remind_on_commit() -> None:
    """Remind of a checklist a renewal has just made, once its transaction commits."""
    transaction.on_commit(lambda: _queue(send_registration_reminder))
