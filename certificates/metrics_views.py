"""/metrics for Prometheus: who may read it is decided in one function, `metrics_reader`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import metrics
from .models import Certificate, CertificateQuerySet


@dataclass(frozen=True)
class Refusal:
    """Why /metrics refuses a request: 401 (say who you are) or 403 (you may not)."""

    status: int
    reason: str


def metrics_reader(request: HttpRequest) -> CertificateQuerySet | Refusal:
    """Who may read /metrics, and which certificates' series they get. The only place that decides:

    - a logged-in user with the view permission: the certificates they may see (organisation limits);
      a logged-in user without it: 403;
    - a scraper from an address in TRUSTVIEW_METRICS_ALLOWED_IPS: every certificate;
    - anyone else: 401 (no data).
    An API token (`Authorization: Bearer`) acts as its user: accounts.middleware.BearerTokenMiddleware
    has made request.user the token's user before this runs (the view is marked `accepts_bearer_token`),
    and refused an invalid token with 401.
    """
    user = request.user
    if user.is_authenticated:
        if not user.has_perm("certificates.view_certificate"):
            return Refusal(403, _("Your role may not read the metrics."))
        return Certificate.objects.for_user(user)
    if _allowed_address(client_address(request)):
        return Certificate.objects.all()
    return Refusal(401, _("Log in, or scrape from an address in TRUSTVIEW_METRICS_ALLOWED_IPS."))


def client_address(request: HttpRequest) -> str:
    """The client's address: the socket's, or behind a proxy (TRUSTVIEW_CLIENT_IP_HEADER) the last
    address in that header, the one the proxy itself added (earlier ones are the client's to write)."""
    header = settings.TRUSTVIEW_CLIENT_IP_HEADER
    if header and request.META.get(header):
        return str(request.META[header]).split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


def _allowed_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in settings.TRUSTVIEW_METRICS_ALLOWED_NETWORKS)


def _metrics_view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    reader = metrics_reader(request)
    if isinstance(reader, Refusal):
        response = HttpResponse(reader.reason + "\n", status=reader.status, content_type="text/plain")
        if reader.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="trustview metrics"'
        return response
    return StreamingHttpResponse(metrics.exposition(reader), content_type=metrics.CONTENT_TYPE)


# Public to the login middleware (a scraper has no session, and gets 401 rather than a login page), but a
# logged-in user's two-factor step still applies (accounts.middleware reads `two_factor_for_sessions`).
metrics_view = login_not_required(never_cache(require_safe(_metrics_view)))
metrics_view.two_factor_for_sessions = True  # type: ignore[attr-defined]
metrics_view.accepts_bearer_token = True  # type: ignore[attr-defined]
