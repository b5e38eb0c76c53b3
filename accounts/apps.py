from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, roles, two-factor login and the audit log. Depends on `certificates`, never the other way:
    the inventory asks only Django's permission question (user.has_perm) of a user, and the audit log
    listens to its history and signals (accounts.receivers)."""

    name = "accounts"
    verbose_name = "Users and roles"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the audit log's receivers)
