"""Status values of the inventory, with the colour each one shows in (one place for badges)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Source(models.TextChoices):
    IMPORT = "import", _("Imported")
    MITID = "mitid", _("MitID Erhverv")
    ENDPOINT = "endpoint", _("Endpoint scan")


class LifecycleState(models.TextChoices):
    """Stored state; expired and expiring are derived from not_after, never stored."""

    ACTIVE = "active", _("Active")
    SUPERSEDED = "superseded", _("Superseded")
    BLOCKED = "blocked", _("Blocked")


class Status(models.TextChoices):
    """What a person sees: the stored state combined with the clock (see CertificateQuerySet.with_status)."""

    VALID = "valid", _("Valid")
    EXPIRING = "expiring", _("Expiring")
    EXPIRED = "expired", _("Expired")
    SUPERSEDED = "superseded", _("Superseded")
    BLOCKED = "blocked", _("Blocked")
    NOT_YET_VALID = "not_yet_valid", _("Not yet valid")


class SituationKey(models.TextChoices):
    """Where a certificate stands, all things considered: its status, its renewal, and whether the portal
    renews it (certificates.situation; one key per certificate at a time)."""

    VALID = "valid", _("Valid")
    EXPIRING = "expiring", _("Expiring")
    EXPIRED = "expired", _("Expired")
    SUPERSEDED = "superseded", _("Superseded")
    BLOCKED = "blocked", _("Blocked")
    NOT_YET_VALID = "not_yet_valid", _("Not yet valid")
    RENEWING = "renewing", _("Renewal in progress")
    RENEWAL_FAILING = "renewal_failing", _("Renewal failing")
    RENEWAL_LATE = "renewal_late", _("Renewal late")
    NOT_RENEWABLE = "not_renewable", _("Not renewed automatically")


STATUS_COLOURS = {
    Status.VALID: "green",
    Status.EXPIRING: "amber",
    Status.EXPIRED: "red",
    Status.SUPERSEDED: "grey",
    Status.BLOCKED: "red",
    Status.NOT_YET_VALID: "blue",
}


class TrustSource(models.TextChoices):
    """Where a trusted CA came from: shipped with trustview, set in settings, or added in the portal."""

    BUILTIN = "builtin", _("Shipped with trustview")
    CONFIGURED = "configured", _("Configured (TRUSTVIEW_TRUST_ROOTS_EXTRA)")
    ADDED = "added", _("Added in the portal")


class Environment(models.TextChoices):
    TEST = "test", _("Test")
    PRODUCTION = "production", _("Production")


class OcesType(models.TextChoices):
    PERSON = "person", _("Person")
    EMPLOYEE = "employee", _("Employee")
    ORGANISATION = "organisation", _("Organisation")
    SYSTEM = "system", _("System")


class EventKind(models.TextChoices):
    IMPORTED = "imported", _("Imported")
    ISSUED = "issued", _("Issued")
    KEY_ADDED = "key_added", _("Private key added")
    RENEWAL_REQUESTED = "renewal_requested", _("Renewal requested")
    RENEWED = "renewed", _("Renewed")
    RENEWAL_FAILED = "renewal_failed", _("Renewal failed")
    BLOCKED = "blocked", _("Blocked")
    KEY_DOWNLOADED = "key_downloaded", _("Key downloaded")
    ALERT_SENT = "alert_sent", _("Alert sent")
    SETTINGS_CHANGED = "settings_changed", _("Renewal settings changed")
    LAPSED = "lapsed", _("Expired without a renewal")
    WARNING = "warning", _("Warning")
    CONTACTS_CHANGED = "contacts_changed", _("Contacts changed")
    DISCOVERED = "discovered", _("Found on an endpoint")
    REGISTRATION = "registration", _("Registration checklist")


class AlertKind(models.TextChoices):
    """What an alert row records (certificates.alerts): one row per (certificate, kind, threshold)."""

    EXPIRY = "expiry", _("Expiry alert")
    LAPSED = "lapsed", _("Expired without a renewal")
    RENEWAL_LATE = "renewal_late", _("Renewal late")


class IncidentKind(models.TextChoices):
    """Something that affects many certificates at once and is told to a person once, when it starts
    and when it ends."""

    RENEWALS_FAILING = "renewals_failing", _("Renewals failing")
    SCHEDULER_STOPPED = "scheduler_stopped", _("Scheduler stopped")


class OrderKind(models.TextChoices):
    ISSUE = "issue", _("Issue")
    RENEW = "renew", _("Renew")


class OrderState(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_PROGRESS = "in_progress", _("In progress")
    ISSUED = "issued", _("Issued")
    FAILED = "failed", _("Failed")


class ChannelKind(models.TextChoices):
    """Where an alert channel posts (certificates.channels formats the message for each)."""

    TEAMS = "teams", _("Microsoft Teams")
    SLACK = "slack", _("Slack")
    WEBHOOK = "webhook", _("Webhook (JSON, signed)")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


OPEN_ORDER_STATES = [OrderState.PENDING, OrderState.IN_PROGRESS]
