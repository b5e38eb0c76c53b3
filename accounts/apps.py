from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, roles and login protection. Depends on `certificates`, never the other way: the inventory
    asks only Django's permission question (user.has_perm) of a user."""

    name = "accounts"
    verbose_name = "Users and roles"
