"""Re-encrypt every stored private key (and alert channel address and secret) with the first key of
TRUSTVIEW_KEY_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from certificates import vault
from certificates.models import AlertChannel, Certificate


class Command(BaseCommand):
    help = (
        "Key rotation: put the new Fernet key first in TRUSTVIEW_KEY_ENCRYPTION_KEYS (keep the old ones), "
        "run this, then remove the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            rows = Certificate.objects.select_for_update().exclude(private_key_encrypted="")
            for certificate in rows.only("pk", "private_key_encrypted"):
                certificate.private_key_encrypted = vault.reseal(certificate.private_key_encrypted)
                certificate.save(update_fields=["private_key_encrypted"])
                count += 1
            for channel in AlertChannel.objects.select_for_update().order_by("pk"):
                channel.url_encrypted = vault.reseal(channel.url_encrypted)
                if channel.secret_encrypted:
                    channel.secret_encrypted = vault.reseal(channel.secret_encrypted)
                channel.save(update_fields=["url_encrypted", "secret_encrypted"])
        self.stdout.write(f"Re-encrypted {count} private key{'s' if count != 1 else ''} with the first key.")
