"""The portal's URLs plus the baseline: an empty logged-in page that extends base.html."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

EMPTY_PAGE = engines["django"].from_string('{% extends "base.html" %}')


def empty_page(request: HttpRequest) -> HttpResponse:
    """What every page costs before it asks anything of the inventory: the session, the user, the menu."""
    return HttpResponse(EMPTY_PAGE.render({}, request))


urlpatterns = [
    path("bench/empty/", empty_page, name="bench-empty"),
    path("", include("trustview.urls")),
]
