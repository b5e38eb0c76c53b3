"""`manage.py create_api_token USERNAME [--name N] [--expires-days D]`: prints a new API token once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.tokens import create_token


class Command(BaseCommand):
    help = (
        "Make an API token for a user and print it (only this once: the portal keeps a hash). The token "
        "acts with the user's role and organisations."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="manage.py create_api_token")
        parser.add_argument("--expires-days", type=int, default=None, help="Default: never expires.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        if not user.is_active:
            raise CommandError(f"The user {options['username']!r} is not active; a token would not work.")
        days = options["expires_days"]
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--expires-days is a number of days from 1 to 3650.")
        name = options["name"].strip()[:100] or "manage.py create_api_token"
        _row, token = create_token(user, name, expires_days=days)
        self.stdout.write(token)
