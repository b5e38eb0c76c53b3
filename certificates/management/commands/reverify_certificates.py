"""Check every certificate's chain against the trust store again (after changing TRUSTVIEW_TRUST_ROOTS_EXTRA,
or once after upgrading to the trust store)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from certificates.models import Certificate
from certificates.trust_admin import reverify_all


class Command(BaseCommand):
    help = "Verify each certificate's chain by signature to the trust store again, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--unverified-only", action="store_true", help="only certificates not verified now (faster)"
        )
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        queryset = Certificate.objects.all()
        if options["unverified_only"]:
            queryset = queryset.exclude(chain_verified=True)
        result = reverify_all(queryset, batch_size=options["batch_size"])
        self.stdout.write(
            f"Checked {result.checked} certificates: {result.newly_verified} now verified, "
            f"{result.newly_unverified} no longer verified."
        )
