"""The audit log's actions."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Logged in")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logged out")
    LOCKED_OUT = "locked_out", _("Locked out")
    TWO_FACTOR_VERIFIED = "two_factor_verified", _("Two-factor code accepted")
    TWO_FACTOR_ADDED = "two_factor_added", _("Two-factor login set up")
    TWO_FACTOR_REMOVED = "two_factor_removed", _("Two-factor login removed")
    USER_CREATED = "user_created", _("User created")
    ROLE_CHANGED = "role_changed", _("Role changed")
    USER_DEACTIVATED = "user_deactivated", _("User deactivated")
    USER_REACTIVATED = "user_reactivated", _("User reactivated")
    KEY_DOWNLOADED = "key_downloaded", _("Private key downloaded")
    CERTIFICATE_BLOCKED = "certificate_blocked", _("Certificate blocked")
    TRUST_STORE_CHANGED = "trust_store_changed", _("Trust store changed")
    API_TOKEN_CREATED = "api_token_created", _("API token created")
    API_TOKEN_REVOKED = "api_token_revoked", _("API token revoked")
    ALERT_CHANNEL_CHANGED = "alert_channel_changed", _("Alert channel changed")
    ENDPOINT_DELETED = "endpoint_deleted", _("Endpoint deleted")
