"""/api/v1/ (the REST API), /api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, served by the portal).

API views answer 401 themselves (problem+json) instead of the login redirect, so they are marked
login_not_required; DRF authenticates every request (Bearer token, or the session with CSRF).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# `schema` tells drf-spectacular about the Bearer token. Every schema drf-spectacular makes comes from
# these URLs (the views below, `manage.py spectacular`), so it is imported here rather than at start-up.
from . import endpoint_views, schema, views  # noqa: F401


def api(view: Any) -> Any:
    return login_not_required(view.as_view())


app_name = "api"
urlpatterns = [
    path("v1/certificates/", api(views.CertificateList), name="certificate-list"),
    path("v1/certificates/export.csv", api(views.CertificateExport), name="certificate-export"),
    path("v1/certificates/import/", api(views.CertificateImport), name="certificate-import"),
    # The PIN is left out of Django's error reports, as on the Issue page.
    path(
        "v1/certificates/issue/",
        sensitive_post_parameters("pin")(api(views.CertificateIssue)),
        name="certificate-issue",
    ),
    path("v1/certificates/<int:pk>/", api(views.CertificateDetail), name="certificate-detail"),
    path("v1/certificates/<int:pk>/renew/", api(views.CertificateRenew), name="certificate-renew"),
    path(
        "v1/certificates/<int:pk>/renewal-settings/",
        api(views.CertificateRenewalSettings),
        name="certificate-renewal-settings",
    ),
    path("v1/certificates/<int:pk>/block/", api(views.CertificateBlock), name="certificate-block"),
    path("v1/certificates/<int:pk>/pkcs12/", api(views.CertificatePkcs12), name="certificate-pkcs12"),
    path("v1/orders/", api(views.OrderList), name="order-list"),
    path("v1/orders/<int:pk>/", api(views.OrderDetail), name="order-detail"),
    path("v1/events/", api(views.EventList), name="event-list"),
    path("v1/profiles/", api(views.ProfileList), name="profile-list"),
    path("v1/profiles/<int:pk>/", api(views.ProfileDetail), name="profile-detail"),
    path("v1/organisations/", api(views.OrganisationList), name="organisation-list"),
    path("v1/endpoints/", api(endpoint_views.EndpointList), name="endpoint-list"),
    path("v1/endpoints/bulk/", api(endpoint_views.EndpointBulk), name="endpoint-bulk"),
    path("v1/endpoints/<int:pk>/", api(endpoint_views.EndpointDetail), name="endpoint-detail"),
    path("v1/endpoints/<int:pk>/scan/", api(endpoint_views.EndpointScan), name="endpoint-scan"),
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    # The documentation is a page for a logged-in browser (the login redirect applies); its script is
    # fetched from the same address (?script), so the page needs no inline script under the CSP.
    path(
        "docs/",
        login_required(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html")
        ),
        name="docs",
    ),
]
