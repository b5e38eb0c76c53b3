"""The Celery application. Tasks live in the apps; the beat schedule lives in settings.

Beat and the workers also watch each other (docs/operations.md, "Who tells a person"): the renewal sweep
is sent by beat and run by a worker, so when it stops, whichever of the two still runs notices and the
alert recipients are told once per outage (certificates.alerts.scheduler_stopped). A worker asks every
TRUSTVIEW_SCHEDULER_CHECK_SECONDS (a task of its own, so the check runs where tasks run, not in the
worker's event loop); beat checks between two ticks.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustview.settings")

log = logging.getLogger(__name__)

app = Celery("trustview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="trustview.check_scheduler", ignore_result=True)
def check_scheduler(started_at: str) -> None:
    """Run by a worker: is the sweep fresh? `started_at` is when that worker started (its grace period)."""
    from .health import watch_scheduler

    watch_scheduler(dt.datetime.fromisoformat(started_at), noticed_by="worker")


class SchedulerWatch(bootsteps.StartStopStep):
    """In every worker: queue `check_scheduler` every TRUSTVIEW_SCHEDULER_CHECK_SECONDS. While beat is
    stopped nothing else would run the check; while beat runs, the check costs one indexed read."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_entry: Any = None

    def start(self, worker: Any) -> None:
        from django.conf import settings
        from django.utils import timezone

        interval = settings.TRUSTVIEW_SCHEDULER_CHECK_SECONDS
        started_at = timezone.now().isoformat()
        # The check expires unrun after one interval: a backlog never runs a pile of stale checks.
        self.timer_entry = worker.timer.call_repeatedly(
            interval, check_scheduler.apply_async, kwargs={"args": (started_at,), "expires": interval}
        )

    def stop(self, worker: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()


app.steps["worker"].add(SchedulerWatch)


class WatchfulScheduler(PersistentScheduler):
    """Beat's scheduler (CELERY_BEAT_SCHEDULER), which also checks the sweep between ticks: while no worker
    takes tasks, beat keeps sending the sweep and nobody runs it, and only beat can tell."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        import django
        from django.apps import apps

        if not apps.ready:
            django.setup()
        from django.utils import timezone

        self.watch_started_at = timezone.now()
        self.next_watch = time.monotonic()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay: float = super().tick(*args, **kwargs)
        from django.conf import settings

        interval = settings.TRUSTVIEW_SCHEDULER_CHECK_SECONDS
        if time.monotonic() >= self.next_watch:
            self.next_watch = time.monotonic() + interval
            try:
                from .health import watch_scheduler

                watch_scheduler(self.watch_started_at, noticed_by="beat")
            except Exception:  # the database or the mail server is down: beat keeps sending tasks
                log.exception("Beat could not check whether the renewal sweep runs.")
        return min(delay, max(0.0, self.next_watch - time.monotonic()))
