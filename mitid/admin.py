from __future__ import annotations

from django.contrib import admin

from .models import CertificateProfile


@admin.register(CertificateProfile)
class CertificateProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "type", "environment", "reference_number", "contact_email"]
    list_filter = ["environment", "type"]
    search_fields = ["name", "reference_number", "organization__cvr", "organization__name"]
    raw_id_fields = ["organization"]
    filter_horizontal = ["certificates"]
