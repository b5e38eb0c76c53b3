"""Top-level URLs: each app owns its own URLconf."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from accounts import audit_views, token_views, two_factor_views
from accounts.middleware import two_factor_exempt
from accounts.own_email import own_email
from certificates.metrics_views import metrics_view
from certificates.views import dashboard
from trustview import health

urlpatterns = [
    path("", dashboard, name="home"),
    # Log in and out, and change one's own password. No self-service password reset by e-mail: an
    # administrator sets passwords (Users page, `manage.py add_user`).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", two_factor_exempt(auth_views.LogoutView.as_view()), name="logout"),
    # Two-factor login (optional; required for private-key roles with TRUSTVIEW_REQUIRE_2FA).
    path("account/two-factor/", two_factor_views.setup, name="two-factor"),
    path("account/two-factor/verify/", two_factor_views.verify, name="two-factor-verify"),
    path("account/email/", own_email, name="own-email"),
    # API tokens: each user makes and revokes their own.
    path("account/api-tokens/", token_views.api_tokens, name="api-tokens"),
    path("account/api-tokens/<int:pk>/revoke/", token_views.revoke_api_token, name="api-token-revoke"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # The language menu works before logging in too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("admin/", admin.site.urls),
    path("certificates/", include("certificates.urls")),
    path("mitid/", include("mitid.urls")),
    path("api/", include("api.urls")),
    path("endpoints/", include("endpoints.urls")),
    path("users/", include("accounts.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("scheduler", health.scheduler, name="scheduler"),
    path("metrics", metrics_view, name="metrics"),
]
