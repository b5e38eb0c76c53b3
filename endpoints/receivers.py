"""What the endpoints app does when a certificate is superseded by its renewal (certificates.signals): the
endpoints that served the old certificate are scanned again at once, and the new certificate gets the
old one's registration checklist. certificates never imports endpoints; it only sends the signal."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from certificates.models import Certificate
from certificates.signals import certificate_superseded

from . import services, tasks


@receiver(certificate_superseded, dispatch_uid="endpoints.superseded")
def superseded(sender: Any, old: Certificate, new: Certificate, **kwargs: Any) -> None:
    if services.copy_checklist(old, new):
        tasks.remind_on_commit()
    if services.rescan_after_renewal(old):
        tasks.scan_due_on_commit()
