from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (/api/v1/), its schema and documentation. It calls the same services as the pages
    and holds no domain logic of its own; it depends on certificates, mitid and accounts, never the other
    way."""

    name = "api"
    verbose_name = "REST API"
    # drf-spectacular learns of the Bearer token when the URLs are loaded (api/urls.py), not here:
    # importing it costs every process that never serves the API (a Celery worker, beat, a management
    # command) a third of its start-up.
