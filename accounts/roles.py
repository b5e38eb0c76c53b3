"""The three roles, as groups of model permissions, so an administrator can compose others in the admin.

Viewer looks; Operator also acts on certificates (issue, import, Renew now, renewal settings, profiles);
Administrator also blocks, downloads private keys, sets who is alerted and manages users. Superusers
count as administrators. The data migration accounts/0001_roles creates the groups from ROLE_PERMISSIONS.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """The groups' names are these values exactly (the labels are translated on the pages)."""

    VIEWER = "Viewer", _("Viewer")
    OPERATOR = "Operator", _("Operator")
    ADMINISTRATOR = "Administrator", _("Administrator")


_VIEWER = [
    "certificates.view_certificate",
    "certificates.view_event",
    "certificates.view_organization",
    "mitid.view_certificateprofile",
    "endpoints.view_endpoint",
]
_OPERATOR = [
    *_VIEWER,
    "certificates.add_certificate",  # import
    "certificates.renew_certificate",
    "mitid.issue_certificate",
    "mitid.add_certificateprofile",
    "mitid.change_certificateprofile",
    "endpoints.add_endpoint",  # add one, or a list
    "endpoints.change_endpoint",  # scan now
    "endpoints.delete_endpoint",
    "endpoints.change_registrationitem",  # the registration checklist: add places, tick them off
]
_ADMINISTRATOR = [
    *_OPERATOR,
    "certificates.block_certificate",
    "certificates.download_private_key",
    "certificates.view_notificationsettings",
    "certificates.change_notificationsettings",
    "certificates.change_organization",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "certificates.view_trustedca",
    "certificates.add_trustedca",
    "certificates.change_trustedca",
    "certificates.delete_trustedca",  # unlock a locked-out login
    "accounts.view_auditentry",  # the audit log (granted by the data migration accounts/0003)
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.VIEWER: _VIEWER,
    Role.OPERATOR: _OPERATOR,
    Role.ADMINISTRATOR: _ADMINISTRATOR,
}


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The user's role: the highest of the role groups they are in (superusers: Administrator)."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return Role.ADMINISTRATOR
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    for role in (Role.ADMINISTRATOR, Role.OPERATOR, Role.VIEWER):
        if role.value in names:
            return role
    return None


def set_role(user: AbstractBaseUser, role: Role | str) -> None:
    """Put the user in exactly one role group (other, hand-made groups are kept)."""
    role = Role(role)
    groups = user.groups  # type: ignore[attr-defined]
    groups.remove(*Group.objects.filter(name__in=Role.values))
    groups.add(Group.objects.get(name=role.value))
