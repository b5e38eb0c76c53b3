"""Celery tasks: thin wrappers that take an id (or nothing), re-read the rows, and call a service.

Every task is safe to run twice; the schedule is CELERY_BEAT_SCHEDULE in settings.
"""

from __future__ import annotations

from celery import shared_task

from . import alerts, renewal, revocation


@shared_task(name="certificates.tasks.sweep")
def sweep() -> dict[str, int]:
    result = renewal.sweep()
    return {"opened": result.opened, "queued": result.queued}


@shared_task(name="certificates.tasks.process_order")
def process_order(order_id: int) -> None:
    renewal.advance_order(order_id)


@shared_task(name="certificates.tasks.send_expiry_alerts")
def send_expiry_alerts() -> int:
    return alerts.send_expiry_alerts()


@shared_task(name="certificates.tasks.send_monthly_status")
def send_monthly_status() -> bool:
    return alerts.send_monthly_status()


@shared_task(name="certificates.tasks.check_revocation")
def check_revocation() -> int:
    return revocation.check_all()
