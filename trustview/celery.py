"""The Celery application. Tasks live in the apps; the beat schedule lives in settings."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustview.settings")

app = Celery("trustview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
