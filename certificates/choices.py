"""Status values of the inventory, with the colour each one shows in (one place for badges)."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    IMPORT = "import", "Imported"
    MITID = "mitid", "MitID Erhverv"
    ENDPOINT = "endpoint", "Endpoint scan"


class LifecycleState(models.TextChoices):
    """Stored state; expired and expiring are derived from not_after, never stored."""

    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    BLOCKED = "blocked", "Blocked"


class Status(models.TextChoices):
    """What a person sees: the stored state combined with the clock (see CertificateQuerySet.with_status)."""

    VALID = "valid", "Valid"
    EXPIRING = "expiring", "Expiring"
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Superseded"
    BLOCKED = "blocked", "Blocked"
    NOT_YET_VALID = "not_yet_valid", "Not yet valid"


STATUS_COLOURS = {
    Status.VALID: "green",
    Status.EXPIRING: "amber",
    Status.EXPIRED: "red",
    Status.SUPERSEDED: "grey",
    Status.BLOCKED: "red",
    Status.NOT_YET_VALID: "blue",
}


class Environment(models.TextChoices):
    TEST = "test", "Test"
    PRODUCTION = "production", "Production"


class OcesType(models.TextChoices):
    PERSON = "person", "Person"
    EMPLOYEE = "employee", "Employee"
    ORGANISATION = "organisation", "Organisation"
    SYSTEM = "system", "System"


class EventKind(models.TextChoices):
    IMPORTED = "imported", "Imported"
    ISSUED = "issued", "Issued"
    KEY_ADDED = "key_added", "Private key added"
    RENEWAL_REQUESTED = "renewal_requested", "Renewal requested"
    RENEWED = "renewed", "Renewed"
    RENEWAL_FAILED = "renewal_failed", "Renewal failed"
    BLOCKED = "blocked", "Blocked"
    KEY_DOWNLOADED = "key_downloaded", "Key downloaded"
    ALERT_SENT = "alert_sent", "Alert sent"
    SETTINGS_CHANGED = "settings_changed", "Renewal settings changed"


class OrderKind(models.TextChoices):
    ISSUE = "issue", "Issue"
    RENEW = "renew", "Renew"


class OrderState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    ISSUED = "issued", "Issued"
    FAILED = "failed", "Failed"


OPEN_ORDER_STATES = [OrderState.PENDING, OrderState.IN_PROGRESS]
