"""Django admin for the inventory. Parsed columns are read-only: they come from the certificate itself."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    AlertChannel,
    Certificate,
    CertificateContact,
    ChannelMessage,
    Event,
    ExpiryAlert,
    ExpiryTally,
    Incident,
    MetricCounter,
    NotificationSettings,
    Order,
    Organization,
    SchedulerHeartbeat,
    TrustedCA,
)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["cvr", "name", "renewal_enabled", "created_at"]
    list_filter = ["renewal_enabled"]
    search_fields = ["cvr", "name"]


PARSED_FIELDS = [
    "subject_cn",
    "subject_dn",
    "subject_organization",
    "issuer_cn",
    "issuer_dn",
    "serial_number",
    "fingerprint_sha256",
    "not_before",
    "not_after",
    "key_algorithm",
    "key_size",
    "signature_algorithm",
    "is_ca",
    "subject_key_id",
    "authority_key_id",
    "subject_alt_names",
    "policies",
    "ocsp_urls",
    "crl_urls",
    "cvr",
    "oces_uuid",
    "environment",
    "oces_type",
    "pem",
    "chain_pem",
]


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ["subject_cn", "cvr", "environment", "oces_type", "not_after", "state", "source"]
    list_filter = ["state", "environment", "oces_type", "source", "auto_renew"]
    search_fields = ["subject_cn", "cvr", "serial_number", "fingerprint_sha256"]
    date_hierarchy = "not_after"
    list_select_related = ["organization"]
    readonly_fields = PARSED_FIELDS
    raw_id_fields = ["renewed_from", "organization"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # certificates enter through import or issuance, where they are parsed


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows to look at in the admin, never to add, change or delete there."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The history is append-only."""

    list_display = ["created_at", "certificate", "kind", "actor_label", "message"]
    list_filter = ["kind"]
    search_fields = ["message", "certificate__subject_cn", "actor_label"]
    list_select_related = ["certificate"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "certificate",
        "kind",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error_code",
    ]
    list_filter = ["kind", "state"]
    search_fields = ["certificate__subject_cn", "ca_order_id"]
    list_select_related = ["certificate"]
    raw_id_fields = ["certificate", "new_certificate", "requested_by"]
    readonly_fields = ["idempotency_key"]


@admin.register(ExpiryAlert)
class ExpiryAlertAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "certificate", "kind", "threshold_days"]
    list_filter = ["kind"]
    list_select_related = ["certificate"]
    raw_id_fields = ["certificate"]


@admin.register(CertificateContact)
class CertificateContactAdmin(admin.ModelAdmin):
    list_display = ["email", "certificate", "created_at"]
    search_fields = ["email", "certificate__subject_cn"]
    list_select_related = ["certificate"]
    raw_id_fields = ["certificate"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["kind", "opened_at", "closed_at"]
    list_filter = ["kind"]
    raw_id_fields = ["certificates"]


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "updated_at"]


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_success_at"]
    readonly_fields = ["name", "last_success_at"]


@admin.register(TrustedCA)
class TrustedCAAdmin(admin.ModelAdmin):
    """Read-only here: adding or removing a CA goes through the Trust store page, which re-verifies the
    certificates concerned."""

    list_display = ["name", "source", "enabled", "not_after", "fingerprint_sha256"]
    list_filter = ["source", "enabled"]
    readonly_fields = [f.name for f in TrustedCA._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TrustedCA | None = None) -> bool:
        return False


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    """Set up on the Notifications page, which encrypts the address and the secret; here the encrypted
    columns are not shown at all (url_encrypted and secret_encrypted are not editable fields)."""

    list_display = [
        "name",
        "kind",
        "organization",
        "enabled",
        "url_hint",
        "last_success_at",
        "last_failure_at",
    ]
    list_filter = ["kind", "enabled"]
    list_select_related = ["organization"]
    readonly_fields = [
        "url_hint",
        "last_success_at",
        "last_failure_at",
        "last_error",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ChannelMessage)
class ChannelMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "kind", "state", "attempts", "sent_at"]
    list_filter = ["state", "kind"]
    list_select_related = ["channel"]
    readonly_fields = [f.name for f in ChannelMessage._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(MetricCounter)
class MetricCounterAdmin(admin.ModelAdmin):
    list_display = ["name", "value"]
    readonly_fields = ["name", "value"]


@admin.register(ExpiryTally)
class ExpiryTallyAdmin(ReadOnlyAdmin):
    """Kept by database triggers (models.ExpiryTally): to look at, never to edit."""

    list_display = ["scope", "state", "day", "certificates", "settled"]
    list_filter = ["state", "settled"]
