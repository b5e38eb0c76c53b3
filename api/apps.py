from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (/api/v1/), its schema and documentation. It calls the same services as the pages
    and holds no domain logic of its own; it depends on certificates, mitid and accounts, never the other
    way."""

    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (tells drf-spectacular about the Bearer token)
