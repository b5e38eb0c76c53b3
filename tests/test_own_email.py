"""Without DJANGO_SUPERUSER_EMAIL, an administrator without an e-mail address is asked for one after
logging in (once, skippable); the banner that alerts reach nobody stays until someone receives them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from certificates import alerts

pytestmark = pytest.mark.django_db
PASSWORD = "root-pw-1"


def log_in(client, username: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302


@pytest.fixture
def root(django_user_model, settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_ALERT_EMAILS = []
    return django_user_model.objects.create_superuser("root", "", PASSWORD)


def test_an_administrator_without_an_address_is_asked_once_and_may_skip(client, root):
    log_in(client, "root")
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("own-email"))
    form = client.get(response["Location"]).content.decode()
    assert "Where should alerts go?" in form and "Skip for now" in form
    # Skipped: the dashboard opens, and the banner still says alerts reach nobody.
    page = client.get(reverse("home"))
    assert page.status_code == 200 and "Alerts reach nobody" in page.content.decode()


def test_the_address_given_receives_alerts_and_the_banner_goes(client, root):
    log_in(client, "root")
    target = client.get(reverse("certificates:list"))["Location"]
    assert client.post(target, {"email": "not an address"}).status_code == 400
    response = client.post(target, {"email": "root@example.dk", "next": reverse("certificates:list")})
    assert response["Location"] == reverse("certificates:list")
    assert alerts.recipients() == ["root@example.dk"]
    assert "Alerts reach nobody" not in client.get(reverse("home")).content.decode()


def test_an_administrator_role_user_is_added_to_the_recipients(client, django_user_model, settings):
    from .conftest import user_with_role

    settings.TRUSTVIEW_ALERT_EMAILS = []
    admin = user_with_role(django_user_model, "ada", "Administrator")
    admin.email = ""
    admin.set_password(PASSWORD)
    admin.save()
    log_in(client, "ada")
    target = client.get(reverse("home"))["Location"]
    client.post(target, {"email": "ada@example.dk"})
    assert alerts.recipients() == ["ada@example.dk"]


def test_nobody_is_asked_while_alerts_reach_someone(client, root, settings):
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    log_in(client, "root")
    assert client.get(reverse("home")).status_code == 200
