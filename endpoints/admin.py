from __future__ import annotations

from django.contrib import admin

from .models import Endpoint, Problem, RegistrationItem, Scan


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["host", "port", "sni", "protocol", "organization", "next_scan_at"]
    list_filter = ["protocol"]
    search_fields = ["host", "sni"]
    raw_id_fields = ["certificate", "last_scan", "created_by"]


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "scanned_at", "tls_version", "subject_cn", "error_code"]
    raw_id_fields = ["endpoint", "certificate"]

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "kind", "opened_at", "alerted_at", "closed_at"]
    list_filter = ["kind"]
    raw_id_fields = ["endpoint", "certificate"]


@admin.register(RegistrationItem)
class RegistrationItemAdmin(admin.ModelAdmin):
    list_display = ["certificate", "place", "done_at", "done_by_label"]
    raw_id_fields = ["certificate", "done_by"]
