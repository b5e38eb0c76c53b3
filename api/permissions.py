"""The pages' permission checks, for the API: the same Django permissions of the same roles."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission


def needs(permission: str) -> type[BasePermission]:
    """A permission class that lets through an authenticated user who holds `permission`."""

    class HasPermission(BasePermission):
        def has_permission(self, request: Any, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(permission))

    HasPermission.__name__ = f"Needs_{permission.replace('.', '_')}"
    return HasPermission
