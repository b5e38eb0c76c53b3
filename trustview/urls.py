"""Top-level URLs: each app owns its own URLconf."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from certificates.views import dashboard
from trustview import health

urlpatterns = [
    path("", dashboard, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("certificates/", include("certificates.urls")),
    path("mitid/", include("mitid.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
