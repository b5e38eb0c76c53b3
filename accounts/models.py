"""What the accounts app stores besides Django's users and groups: organisation limits and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from certificates.models import Organization, organisation_limit

from .choices import AuditAction
from .roles import Role, role_of

# One line about an entry, from its detail (the audit page's "What" column).
SUMMARIES = {
    AuditAction.LOGIN_FAILED: _("Wrong password, or no such active user."),
    AuditAction.USER_CREATED: _("%(user)s, role %(role)s"),
    AuditAction.ROLE_CHANGED: _("%(user)s: %(old_role)s → %(new_role)s"),
    AuditAction.USER_DEACTIVATED: _("%(user)s"),
    AuditAction.USER_REACTIVATED: _("%(user)s"),
    AuditAction.KEY_DOWNLOADED: _("%(common_name)s (serial number %(serial_number)s)"),
    AuditAction.CERTIFICATE_BLOCKED: _("%(common_name)s (serial number %(serial_number)s)"),
    AuditAction.TRUST_STORE_CHANGED: _("%(change)s: %(name)s"),
    AuditAction.API_TOKEN_CREATED: _("“%(name)s” (%(prefix)s…) of %(user)s"),
    AuditAction.API_TOKEN_REVOKED: _("“%(name)s” (%(prefix)s…) of %(user)s"),
}
TRUST_CHANGES = {"added": _("Added"), "removed": _("Removed")}


def _start_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def matching(
        self,
        *,
        action: str = "",
        user: str = "",
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> AuditEntryQuerySet:
        """Entries of one action, by one user (the username, as typed at a failed login too), between two
        days of the portal's time zone (both included)."""
        entries = self
        if action:
            entries = entries.filter(action=action)
        if user:
            entries = entries.filter(actor_label__iexact=user.strip())
        if since:
            entries = entries.filter(created_at__gte=_start_of_day(since))
        if until:
            entries = entries.filter(created_at__lt=_start_of_day(until + dt.timedelta(days=1)))
        return entries


class AuditEntry(models.Model):
    """One security-relevant act (a login, a role change, a key download). Append-only: rows are written
    once and never changed. Never holds a password or a one-time code."""

    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150,
        blank=True,
        help_text="Who acted (the username given, for a failed login), kept if the user is deleted.",
    )
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    detail = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], name="audit_time_idx"),
            models.Index(fields=["action", "created_at"], name="audit_action_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label}: {self.get_action_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Audit entries are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def summary(self) -> str:
        """What happened, in the reader's language (role names and trust changes translated too)."""
        if self.action == AuditAction.LOGIN_FAILED and self.detail.get("step") == "two_factor":
            return gettext("Wrong two-factor code.")
        if self.action == AuditAction.LOGIN and self.detail.get("two_factor"):
            return gettext("Password accepted; two-factor code still to come.")
        template = SUMMARIES.get(AuditAction(self.action))
        if template is None:
            return ""
        values = dict(self.detail)
        for key in ("role", "old_role", "new_role"):
            if values.get(key) in Role.values:
                values[key] = Role(values[key]).label
            elif key in values:
                values[key] = values[key] or gettext("none")
        if "change" in values:
            values["change"] = TRUST_CHANGES.get(values["change"], values["change"])
        try:
            return str(template) % values
        except (KeyError, TypeError, ValueError):
            return ""


class OrganisationLimit(models.Model):
    """Limits a user to the certificates of some organisations (CVR): every page, count, chart, action
    and import then covers only those (certificates.models.organisation_limit reads this row by its
    related name). A user without this row is not limited; one with an empty row sees nothing."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organisation_limit"
    )
    organizations = models.ManyToManyField(Organization, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"{self.user}: {', '.join(o.cvr for o in self.organizations.all()) or 'no organisation'}"


def limit_to_organisations(user: User, organizations: list[Organization] | None) -> None:
    """Limit `user` to these organisations; None (or none chosen) lifts the limit."""
    if not organizations:
        OrganisationLimit.objects.filter(user=user).delete()
        return
    limit, _ = OrganisationLimit.objects.get_or_create(user=user)
    limit.organizations.set(organizations)


def access_of(user: User) -> str:
    """A user's role and the organisations (CVR) they are limited to, as one comparable text, e.g.
    "Operator; 19552101" or "Administrator; all" (a token remembers the access it was made for)."""
    role = role_of(user)
    limit = organisation_limit(user)
    organisations = "all" if limit is None else ",".join(sorted(limit.values_list("cvr", flat=True)))
    return f"{role.value if role else ''}; {organisations}"


class ApiToken(models.Model):
    """A token with which a script calls the API (`Authorization: Bearer <token>`) as its user, with that
    user's role and organisation limits. Only a SHA-256 digest of the token is stored: the token itself
    is shown once, when it is made (accounts.tokens). `prefix`, its first characters, names it on pages
    and in the audit log without revealing it. `access` is the user's role and organisations when it was
    made: once they change (a promotion, a lifted limit), the token stops, so a script's token never
    gains powers nobody gave it; its user makes a new one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField("SHA-256 of the token", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    access = models.TextField("role and organisations it was made for", editable=False)
    # Written at most once a minute (accounts.tokens.LAST_USED_RESOLUTION), not at every request.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    def is_usable(self, now: dt.datetime | None = None) -> bool:
        """Whether the token still opens the API: not revoked, not expired, its user active and with the
        role and organisations the token was made for."""
        now = now or timezone.now()
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and bool(self.user.is_active)
            and not self.access_changed
        )

    @property
    def access_changed(self) -> bool:
        """Whether the user's role or organisations are no longer those the token was made for."""
        return access_of(self.user) != self.access
