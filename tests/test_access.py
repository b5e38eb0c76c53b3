"""Access control: every URL in the URL conf, for every role, by direct request (GET and POST).

A new view without a rule here fails `test_every_url_has_a_rule`, so no page can be added without
deciding who may use it.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from certificates.models import Certificate, NotificationSettings
from certificates.services import import_certificate_file
from endpoints.models import Endpoint
from mitid.models import CertificateProfile

from .conftest import ALL_FIXTURES, oces3, user_with_role

pytestmark = pytest.mark.django_db

PUBLIC = "public"
LOGGED_IN = "logged in"
# URL name -> the permission a GET needs, and the one a POST needs.
RULES: dict[str, tuple[str, str]] = {
    "login": (PUBLIC, PUBLIC),
    "logout": (LOGGED_IN, LOGGED_IN),
    "password_change": (LOGGED_IN, LOGGED_IN),
    "own-email": (LOGGED_IN, LOGGED_IN),
    "password_change_done": (LOGGED_IN, LOGGED_IN),
    "set_language": (PUBLIC, PUBLIC),
    "healthz": (PUBLIC, PUBLIC),
    "readyz": (PUBLIC, PUBLIC),
    "scheduler": (PUBLIC, PUBLIC),
    "home": ("certificates.view_certificate",) * 2,
    "certificates:list": ("certificates.view_certificate",) * 2,
    "certificates:export": ("certificates.view_certificate",) * 2,
    "certificates:detail": ("certificates.view_certificate",) * 2,
    "certificates:download-pem": ("certificates.view_certificate",) * 2,
    "certificates:download-chain": ("certificates.view_certificate",) * 2,
    "certificates:renewal-progress": ("certificates.view_certificate",) * 2,
    "certificates:import": ("certificates.add_certificate",) * 2,
    "certificates:renew": ("certificates.renew_certificate",) * 2,
    "certificates:renew-enabled": ("certificates.renew_certificate",) * 2,
    "certificates:renewal-settings": ("certificates.renew_certificate",) * 2,
    "certificates:block": ("certificates.block_certificate",) * 2,
    "certificates:download-pkcs12": ("certificates.download_private_key",) * 2,
    "certificates:notifications": ("certificates.change_notificationsettings",) * 2,
    "certificates:notifications-test": ("certificates.change_notificationsettings",) * 2,
    "certificates:contacts": ("certificates.renew_certificate",) * 2,
    "certificates:channel-new": ("certificates.change_notificationsettings",) * 2,
    "certificates:channel-edit": ("certificates.change_notificationsettings",) * 2,
    "certificates:channel-delete": ("certificates.change_notificationsettings",) * 2,
    "certificates:channel-test": ("certificates.change_notificationsettings",) * 2,
    "mitid:issue": ("mitid.issue_certificate",) * 2,
    "mitid:profiles": ("mitid.view_certificateprofile",) * 2,
    "mitid:profile-new": ("mitid.add_certificateprofile",) * 2,
    "mitid:profile-edit": ("mitid.view_certificateprofile", "mitid.change_certificateprofile"),
    "certificates:trust-store": ("certificates.change_trustedca",) * 2,
    "certificates:trust-remove": ("certificates.delete_trustedca",) * 2,
    "accounts:users": ("auth.view_user",) * 2,
    "accounts:user-new": ("auth.add_user",) * 2,
    "accounts:user-edit": ("auth.change_user",) * 2,
    "two-factor": (LOGGED_IN, LOGGED_IN),
    "two-factor-verify": (LOGGED_IN, LOGGED_IN),
    "api-tokens": (LOGGED_IN, LOGGED_IN),  # each user's own tokens only
    "api-token-revoke": (LOGGED_IN, LOGGED_IN),
    "audit": ("accounts.view_auditentry",) * 2,
    # The REST API: the pages' permissions; an anonymous request gets 401, not the login redirect.
    "api:certificate-list": ("certificates.view_certificate",) * 2,
    "api:certificate-export": ("certificates.view_certificate",) * 2,
    "api:certificate-detail": ("certificates.view_certificate",) * 2,
    "api:certificate-import": ("certificates.add_certificate",) * 2,
    "api:certificate-issue": ("mitid.issue_certificate",) * 2,
    "api:certificate-renew": ("certificates.renew_certificate",) * 2,
    "api:certificate-renewal-settings": ("certificates.renew_certificate",) * 2,
    "api:certificate-block": ("certificates.block_certificate",) * 2,
    "api:certificate-pkcs12": ("certificates.download_private_key",) * 2,
    "api:order-list": ("certificates.view_certificate",) * 2,
    "api:order-detail": ("certificates.view_certificate",) * 2,
    "api:event-list": ("certificates.view_certificate",) * 2,
    "api:profile-list": ("mitid.view_certificateprofile",) * 2,
    "api:profile-detail": ("mitid.view_certificateprofile",) * 2,
    "api:organisation-list": ("certificates.view_organization",) * 2,
    "api:endpoint-list": ("endpoints.view_endpoint", "endpoints.add_endpoint"),
    "api:endpoint-bulk": ("endpoints.add_endpoint",) * 2,
    "api:endpoint-detail": ("endpoints.view_endpoint",) * 2,
    "api:endpoint-scan": ("endpoints.change_endpoint",) * 2,
    "api:schema": (LOGGED_IN, LOGGED_IN),
    "api:docs": (LOGGED_IN, LOGGED_IN),
    "endpoints:list": ("endpoints.view_endpoint",) * 2,
    "endpoints:not-deployed": ("endpoints.view_endpoint",) * 2,
    "endpoints:detail": ("endpoints.view_endpoint",) * 2,
    "endpoints:add": ("endpoints.add_endpoint",) * 2,
    "endpoints:bulk": ("endpoints.add_endpoint",) * 2,
    "endpoints:scan": ("endpoints.change_endpoint",) * 2,
    "endpoints:delete": ("endpoints.delete_endpoint",) * 2,
    "endpoints:registration-add": ("endpoints.change_registrationitem",) * 2,
    "endpoints:registration-tick": ("endpoints.change_registrationitem",) * 2,
    "metrics": ("certificates.view_certificate",) * 2,
}
# API addresses answer an anonymous request with 401 (problem+json) instead of the login redirect.
API_401 = {name for name in RULES if name.startswith("api:") and name != "api:docs"}
# Other URLs for machines (scrapers): an anonymous request gets 401 rather than the login page.
MACHINE_URLS = API_401 | {"metrics"}
ROLES = [None, "Viewer", "Operator", "Administrator"]


def url_names() -> list[str]:
    """Every named URL of the portal (the Django admin guards itself: staff only)."""

    def walk(patterns, namespace=None):  # type: ignore[no-untyped-def]
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield f"{namespace}:{pattern.name}" if namespace else pattern.name

    return sorted(name for name in walk(get_resolver().url_patterns) if not name.startswith("admin:"))


def test_every_url_has_a_rule():
    assert set(url_names()) - set(RULES) == set(), "a new view needs an access rule in RULES"


@pytest.fixture
def objects(django_user_model):  # type: ignore[no-untyped-def]
    (outcome, *_) = import_certificate_file(oces3(ALL_FIXTURES[2]), actor="test")
    profile = CertificateProfile.objects.create(
        name="Lønsystem",
        organization=outcome.certificate.organization,
        reference_number="REF-1",
        type="system",
        environment="test",
    )
    other = django_user_model.objects.create_user("someone", "someone@example.dk", "x-pw-1")
    from accounts.models import ApiToken

    token = ApiToken.objects.create(user=other, name="theirs", prefix="tv_abcdef", digest="0" * 64)
    # Port 9 (discard) on loopback: nothing listens, so a scan is refused at once.
    endpoint = Endpoint.objects.create(
        organization=outcome.certificate.organization, host="127.0.0.1", port=9
    )
    return {
        "certificates": outcome.certificate.pk,
        "mitid": profile.pk,
        "accounts": other.pk,
        "": token.pk,
        "api": outcome.certificate.pk,
        "endpoints": endpoint.pk,
    }


def url_for(name: str, objects: dict[str, int]) -> str:
    namespace = name.split(":")[0] if ":" in name else ""
    try:
        return reverse(name)
    except Exception:
        return reverse(name, args=[objects[namespace]])


def client_for(role: str | None, logged_in: bool = True) -> Client:
    client = Client()
    if logged_in:
        user = (
            user_with_role(get_user_model(), f"user-{role.lower()}", role)
            if role
            else get_user_model().objects.create_user("no-role", "no-role@example.dk", "x-pw-1")
        )
        client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_as_its_permissions_say(role, objects):  # type: ignore[no-untyped-def]
    client = client_for(role)
    user = get_user_model().objects.get(username=f"user-{role.lower()}" if role else "no-role")
    before = Certificate.objects.values_list("state", "auto_renew").get()
    for name in url_names():
        url = url_for(name, objects)
        for method, needed in zip(("get", "post"), RULES[name], strict=True):
            if name == "logout":
                continue  # logging out would end this client's session for the rest of the walk
            response = getattr(client, method)(url)
            allowed = needed in (PUBLIC, LOGGED_IN) or user.has_perm(needed)
            assert response.status_code != 500, (name, method)
            if allowed:
                assert response.status_code != 403, (role, name, method)
            else:
                # Refused: 403, or 405 where the method itself is refused first (a GET of a POST-only URL).
                assert response.status_code in (403, 405), (role, name, method, response.status_code)
    if role in (None, "Viewer"):
        # Nothing a viewer (or a user without a role) sent changed anything.
        assert Certificate.objects.values_list("state", "auto_renew").get() == before
        assert not NotificationSettings.objects.exists()


def test_anonymous_visitors_are_sent_to_the_login_page_except_for_public_urls(objects):  # type: ignore[no-untyped-def]
    client = Client()
    for name in url_names():
        url = url_for(name, objects)
        response = client.get(url)
        if name in MACHINE_URLS:
            assert response.status_code == 401, name
        elif RULES[name][0] == PUBLIC:
            assert response.status_code in (200, 302, 405, 503) and "/accounts/login/" not in response.get(
                "Location", ""
            ), name
        else:
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), name


def test_the_roles_hold_the_permissions_accounts_roles_names():
    from django.contrib.auth.models import Group

    from accounts.roles import ROLE_PERMISSIONS

    for name, permissions in ROLE_PERMISSIONS.items():
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=name).permissions.select_related("content_type")
        }
        assert held == set(permissions), name


def test_a_viewer_sees_no_action_and_never_a_private_key(vera_client, alice_client, objects):  # type: ignore[no-untyped-def]
    url = reverse("certificates:detail", args=[objects["certificates"]])
    Certificate.objects.filter(pk=objects["certificates"]).update(private_key_encrypted="held")
    page = vera_client.get(url).content.decode()
    for action in ("Renew now", "Block…", "Download PKCS#12", "Change renewal settings"):
        assert action not in page, action
    assert (
        vera_client.post(reverse("certificates:download-pkcs12", args=[objects["certificates"]])).status_code
        == 403
    )
    admin_page = alice_client.get(url).content.decode()
    assert "Download PKCS#12" in admin_page


def test_an_operator_acts_but_never_gets_a_private_key_or_blocks(olga_client, objects):  # type: ignore[no-untyped-def]
    pk = objects["certificates"]
    Certificate.objects.filter(pk=pk).update(private_key_encrypted="held")
    page = olga_client.get(reverse("certificates:detail", args=[pk])).content.decode()
    assert "Download PKCS#12" not in page and "Block…" not in page
    assert olga_client.post(reverse("certificates:download-pkcs12", args=[pk])).status_code == 403
    assert olga_client.post(reverse("certificates:block", args=[pk])).status_code == 403
    assert Certificate.objects.get(pk=pk).state == "active"
    assert olga_client.get(reverse("certificates:import")).status_code == 200
