"""The OpenAPI schema (/api/schema/) is valid OpenAPI 3 and names every API address; the documentation
(/api/docs/) is served by the portal itself and loads only same-origin scripts (the CSP allows no more)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def api_routes() -> set[str]:
    """Every address under /api/v1/, with its parameters as {} ("/api/v1/certificates/{}/")."""

    def walk(patterns, prefix=""):  # type: ignore[no-untyped-def]
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield "/" + route

    routes = walk(get_resolver().url_patterns)
    return {re.sub(r"<[^>]+>", "{}", r) for r in routes if r.startswith("/api/v1/")}


def test_the_schema_is_valid_openapi_and_names_every_api_address(vera_client):
    response = vera_client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in schema["paths"]}
    routes = api_routes()
    assert len(routes) >= 15 and routes <= documented, routes - documented
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    renew = schema["paths"]["/api/v1/certificates/{id}/renew/"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in renew["parameters"])


def test_the_docs_page_loads_only_the_portals_own_scripts(vera_client, client):
    assert client.get("/api/docs/")["Location"].startswith("/accounts/login/")
    page = vera_client.get("/api/docs/")
    html = page.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 3
    for attributes, body in scripts:
        source = re.search(r'src="([^"]+)"', attributes).group(1)
        assert source.startswith("/") and not source.startswith("//") and not body.strip(), source
        assert vera_client.get(source.replace("&amp;", "&")).status_code == 200, source
    assert "<style" not in html and " style=" not in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
