"""Top-level URLs: each app owns its own URLconf."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="certificates:list", permanent=False), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("certificates/", include("certificates.urls")),
    path("mitid/", include("mitid.urls")),
]
