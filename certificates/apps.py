from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CertificatesConfig(AppConfig):
    name = "certificates"
    verbose_name = "Certificates"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  # connects channel_message_queued to the delivery task
        from .trust import install_builtin_roots

        # After every migrate (and a test database flush): the shipped OCES3 roots, where they have no row.
        post_migrate.connect(install_builtin_roots, sender=self, dispatch_uid="certificates.trust_roots")
