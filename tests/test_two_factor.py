"""Two-factor login (TOTP): a user sets it up with a real code from the secret, logs in with a second
step, wrong codes are refused and throttled, and TRUSTVIEW_REQUIRE_2FA makes administrators set it up."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry

from .conftest import user_with_role

pytestmark = pytest.mark.django_db

SETUP = reverse("two-factor")
VERIFY = reverse("two-factor-verify")
# Near the real time, so sessions saved at T0 have not expired when a request follows outside travel().
T0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


def code_for(device: TOTPDevice) -> str:
    """The code an authenticator app shows now (RFC 6238, from the device's secret)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 500_000) % 1_000_000:06d}"


def set_up(client: Client, at: dt.datetime) -> TOTPDevice:
    """Set up two-factor login on the set-up page, as a user with an app would."""
    with time_machine.travel(at, tick=False):
        page = client.get(SETUP).content.decode()
        device = TOTPDevice.objects.get(confirmed=False)
        assert "<svg" in page and device.config_url.split("secret=")[1][:8] in page.replace(" ", "")
        response = client.post(SETUP, {"code": code_for(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_a_user_sets_up_two_factor_and_then_logs_in_with_a_code(django_user_model):
    olga = user_with_role(django_user_model, "olga", "Operator")
    client = Client()
    client.force_login(olga)
    with time_machine.travel(T0, tick=False):
        client.get(SETUP)
        pending = TOTPDevice.objects.get(user=olga, confirmed=False)
        refused = client.post(SETUP, {"code": wrong_code(pending)})
    assert refused.status_code == 400 and "That code is not right." in refused.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    device = set_up(client, T0 + dt.timedelta(minutes=1))
    # Once confirmed, the secret is never shown again.
    page = client.get(SETUP).content.decode()
    assert "<svg" not in page and "Two-factor login is on" in page

    # A new login: the password alone does not make the session count.
    fresh = Client()
    at = T0 + dt.timedelta(minutes=2)
    with time_machine.travel(at, tick=False):
        response = fresh.post(reverse("login"), {"username": "olga", "password": "olga-pw-1"})
        assert response.status_code == 302
        listing = fresh.get(reverse("certificates:list"))
        assert listing.status_code == 302 and listing["Location"].startswith(VERIFY)
        assert fresh.get(listing["Location"]).status_code == 200
        wrong = fresh.post(VERIFY, {"code": wrong_code(device), "next": "/certificates/"})
        assert wrong.status_code == 400 and "That code is not right." in wrong.content.decode()
        assert fresh.get(reverse("certificates:list")).status_code == 302
    with time_machine.travel(at + dt.timedelta(seconds=30), tick=False):
        right = fresh.post(VERIFY, {"code": code_for(device), "next": "/certificates/"})
        assert right.status_code == 302 and right["Location"] == "/certificates/"
        assert fresh.get(reverse("certificates:list")).status_code == 200
        # A code is good once: the same code again (another session) is refused.
        again = Client()
        again.post(reverse("login"), {"username": "olga", "password": "olga-pw-1"})
        assert again.post(VERIFY, {"code": code_for(device)}).status_code == 400

    actions = list(AuditEntry.objects.filter(actor=olga).order_by("pk").values_list("action", flat=True))
    assert actions.count("two_factor_added") == 1 and actions.count("two_factor_verified") == 1
    failed = AuditEntry.objects.filter(action="login_failed", detail__step="two_factor")
    assert failed.count() == 2
    # No code is ever stored in the audit log.
    stored = " ".join(str(entry.detail) for entry in AuditEntry.objects.all())
    assert code_for(device) not in stored and wrong_code(device) not in stored


def test_wrong_codes_are_throttled_so_they_cannot_be_guessed(django_user_model):
    olga = user_with_role(django_user_model, "olga", "Operator")
    client = Client()
    client.force_login(olga)
    device = set_up(client, T0)
    client.logout()
    client.post(reverse("login"), {"username": "olga", "password": "olga-pw-1"})
    at = T0 + dt.timedelta(minutes=5)
    with time_machine.travel(at, tick=False):
        for _ in range(3):
            client.post(VERIFY, {"code": wrong_code(device)})
        # Three wrong codes: the next is not even checked for 4 seconds, the right one included.
        refused = client.post(VERIFY, {"code": code_for(device)})
        assert refused.status_code == 400
        assert re.search(r"Too many wrong codes. Wait until \d\d:\d\d:\d\d", refused.content.decode())
    with time_machine.travel(at + dt.timedelta(seconds=5), tick=False):
        assert client.post(VERIFY, {"code": code_for(device)}).status_code == 302
        assert client.get(reverse("certificates:list")).status_code == 200


def test_removing_two_factor_needs_a_current_code(django_user_model):
    olga = user_with_role(django_user_model, "olga", "Operator")
    client = Client()
    client.force_login(olga)
    device = set_up(client, T0)
    with time_machine.travel(T0 + dt.timedelta(minutes=1), tick=False):
        assert client.post(SETUP, {"code": wrong_code(device)}).status_code == 400
        assert TOTPDevice.objects.filter(pk=device.pk).exists()
    with time_machine.travel(T0 + dt.timedelta(minutes=2), tick=False):
        assert client.post(SETUP, {"code": code_for(device)}).status_code == 302
    assert not TOTPDevice.objects.filter(user=olga).exists()
    assert AuditEntry.objects.filter(actor=olga, action="two_factor_removed").count() == 1
    assert client.get(reverse("certificates:list")).status_code == 200  # password alone again


def test_required_two_factor_sends_an_administrator_to_set_it_up_but_not_an_operator(
    settings, alice_client, olga_client
):
    settings.TRUSTVIEW_REQUIRE_2FA = True
    home = alice_client.get(reverse("home"))
    assert home.status_code == 302 and home["Location"].startswith(SETUP)
    page = alice_client.get(home["Location"]).content.decode()
    assert "Your role can download private keys, so it needs two-factor login." in page
    # No private key by direct request either, until two-factor login is set up.
    assert alice_client.post(reverse("certificates:download-pkcs12", args=[1])).status_code == 302
    assert olga_client.get(reverse("home")).status_code == 200

    set_up(alice_client, T0)
    assert alice_client.get(reverse("home")).status_code == 200
    # Off (the development default), nobody is sent anywhere.
    settings.TRUSTVIEW_REQUIRE_2FA = False
    assert olga_client.get(reverse("home")).status_code == 200


def test_an_administrator_who_must_use_two_factor_can_still_log_out(settings, alice_client):
    settings.TRUSTVIEW_REQUIRE_2FA = True
    response = alice_client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in alice_client.session


def test_the_set_up_page_works_without_inline_script_or_style(django_user_model):
    client = Client()
    client.force_login(user_with_role(django_user_model, "vera", "Viewer"))
    response = client.get(SETUP)
    page = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in page and "style=" not in page and "<svg" in page


def test_two_factor_is_required_by_default_in_production_only(tmp_path):
    from .test_production_settings import manage, production_env

    show = ("shell", "-c", "from django.conf import settings; print(settings.TRUSTVIEW_REQUIRE_2FA)")
    production = production_env(tmp_path)
    assert manage(production, *show).stdout.split()[-1] == "True"
    development = production_env(tmp_path, TRUSTVIEW_ENV="development")
    assert manage(development, *show).stdout.split()[-1] == "False"
