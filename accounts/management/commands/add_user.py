"""`manage.py add_user USERNAME --role viewer|operator|administrator [--email E] [--password-file F]`."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import audit
from accounts.models import limit_to_organisations
from accounts.roles import Role, set_role
from certificates.models import Organization


class Command(BaseCommand):
    help = (
        "Create a user with a role, or give an existing user that role. The password comes from "
        "--password-file (first line) or a prompt, never from the command line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.lower() for role in Role.values])
        parser.add_argument("--email", default="")
        parser.add_argument("--password-file", type=Path)
        parser.add_argument(
            "--organisation",
            action="append",
            metavar="CVR",
            help="Limit the user to this organisation's certificates (repeat for more). Without it: all.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = Role(options["role"].capitalize())
        organisations = self._organisations(options["organisation"] or [])
        users = get_user_model()
        user = users.objects.filter(username=options["username"]).first()
        password = self._password(options["password_file"], ask=user is None)
        candidate = user or users(username=options["username"], email=options["email"])
        if password is not None:
            try:
                password_validation.validate_password(password, candidate)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None
        before = audit.user_state(user)
        with transaction.atomic():
            if options["email"]:
                candidate.email = options["email"]
            if password is not None:
                candidate.set_password(password)
            candidate.save()
            set_role(candidate, role)
            audit.record_user_saved(candidate, before, label="manage.py add_user")
            limit_to_organisations(candidate, organisations)
        verb = "Created" if user is None else "Updated"
        scope = f", limited to CVR {', '.join(o.cvr for o in organisations)}" if organisations else ""
        self.stdout.write(f"{verb} {candidate.get_username()} with the role {role.value}{scope}.")

    def _organisations(self, cvrs: list[str]) -> list[Organization]:
        found = {o.cvr: o for o in Organization.objects.filter(cvr__in=cvrs)}
        unknown = [cvr for cvr in cvrs if cvr not in found]
        if unknown:
            raise CommandError(f"No organisation with CVR {', '.join(unknown)} in the inventory.")
        return [found[cvr] for cvr in cvrs]

    def _password(self, path: Path | None, ask: bool) -> str | None:
        if path is not None:
            try:
                lines = path.read_text().splitlines()
            except OSError as error:
                raise CommandError(f"Cannot read the password file: {error.strerror}") from None
            if not lines or not lines[0]:
                raise CommandError("The password file is empty.")
            return lines[0]
        if not ask:
            return None
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return first
