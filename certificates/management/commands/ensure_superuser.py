"""Make sure an administrator can log in (used by `make run`)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create or update the superuser from DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD / "
        "DJANGO_SUPERUSER_EMAIL; without them, create 'admin' with a generated password (printed once) "
        "when there is no superuser yet."
    )
    # `migrate` runs the system checks just before this command (make run, the compose file); running them
    # again would load every URL and view for a command that touches one table.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        if username and password:
            lookup = {users.USERNAME_FIELD: username}
            user = users.objects.filter(**lookup).first() or users(**lookup)
            created = user.pk is None
            user.email = email or user.email
            user.is_staff = user.is_superuser = user.is_active = True
            user.set_password(password)
            user.save()
            verb = "Created" if created else "Updated"
            self.stdout.write(
                f"{verb} superuser '{username}' with the password from DJANGO_SUPERUSER_PASSWORD."
            )
            return
        existing = users.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None and email and existing.email != email:
            # Alerts go to administrators' addresses by default: give the first one the address asked for.
            existing.email = email
            existing.save(update_fields=["email"])
            self.stdout.write(f"Set the e-mail address of superuser '{existing.get_username()}' to {email}.")
        if existing is not None:
            self.stdout.write(
                f"Superuser '{existing.get_username()}' exists; log in with its password "
                "(set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD to reset it)."
            )
            return
        username = username or "admin"
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username, email or "", password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created superuser '{username}' with password: {password}\n"
                "(shown once; set DJANGO_SUPERUSER_PASSWORD to choose your own)"
            )
        )
