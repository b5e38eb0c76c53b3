from __future__ import annotations

from django.apps import AppConfig


class MitidConfig(AppConfig):
    name = "mitid"
    verbose_name = "MitID Erhverv"

    def ready(self) -> None:
        from certificates.signals import certificate_renewed

        from .signals import keep_renewal_in_profile

        certificate_renewed.connect(keep_renewal_in_profile, dispatch_uid="mitid-keep-renewal-in-profile")
