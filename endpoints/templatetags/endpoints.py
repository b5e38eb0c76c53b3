"""Parts of certificates' pages that the endpoints app fills in: the endpoints serving a certificate and
its registration checklist (its page), and the "renewed but not deployed" card (the dashboard). Loaded by
the templates, so `certificates` imports nothing of this app. Each part shows only what the reader may
see (their organisations)."""

from __future__ import annotations

from typing import Any

from django import template

from certificates.models import Certificate

from ..forms import SUGGESTED_PLACES, PlaceForm
from ..models import Endpoint, RegistrationItem, Sighting

register = template.Library()


@register.inclusion_tag("endpoints/includes/certificate_endpoints.html", takes_context=True)
def certificate_endpoints(context: dict[str, Any], certificate: Certificate) -> dict[str, Any]:
    """The endpoints that served this certificate, and when each was last seen serving it."""
    user = context["request"].user
    sightings = (
        Sighting.objects.filter(certificate=certificate, endpoint__in=Endpoint.objects.for_user(user))
        .select_related("endpoint")
        .order_by("-last_seen_at")
    )
    return {
        "sightings": list(sightings),
        "can_view": user.has_perm("endpoints.view_endpoint"),
        "perms": context.get("perms"),
    }


@register.inclusion_tag("endpoints/includes/registration_checklist.html", takes_context=True)
def registration_checklist(context: dict[str, Any], certificate: Certificate) -> dict[str, Any]:
    """Where the certificate is registered, what is still to register, and who ticked what off."""
    return {
        "certificate": certificate,
        "items": list(RegistrationItem.objects.filter(certificate=certificate)),
        "form": PlaceForm(),
        "suggestions": SUGGESTED_PLACES,
        "perms": context.get("perms"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("endpoints/includes/not_deployed_card.html", takes_context=True)
def not_deployed_card(context: dict[str, Any]) -> dict[str, Any]:
    """How many endpoints still serve a certificate that has been renewed (one count query)."""
    user = context["request"].user
    if not user.has_perm("endpoints.view_endpoint"):
        return {"show": False}
    return {"show": True, "count": Endpoint.objects.for_user(user).not_deployed().count()}
