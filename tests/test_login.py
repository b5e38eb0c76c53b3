"""Logging in: every page needs it, a few wrong passwords lock the login, an administrator unlocks it;
users and roles from the Users page and the command line; the Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.roles import Role, role_of

pytestmark = pytest.mark.django_db
LOGIN = reverse("login")


def log_in(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(LOGIN, {"username": username, "password": password})


def test_a_few_wrong_passwords_lock_the_login_with_a_time_to_try_again(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_user("bob", "bob@example.dk", "right-password-1")
    client = Client()
    for _ in range(2):
        assert log_in(client, "bob", "wrong").status_code == 200  # the form again, with its error
    locked = log_in(client, "bob", "wrong")
    assert locked.status_code == 429
    assert re.search(r"Too many failed logins .* Try again after \d\d:\d\d", locked.content.decode())
    # Locked means locked: the right password does not get in either.
    right = log_in(client, "bob", "right-password-1")
    assert right.status_code == 429 and "_auth_user_id" not in client.session
    # Another user from the same address is not affected.
    django_user_model.objects.create_user("carl", "carl@example.dk", "carl-password-1")
    assert log_in(Client(), "carl", "carl-password-1").status_code == 302

    call_command("axes_reset_username", "bob")  # an administrator unlocks it
    assert log_in(client, "bob", "right-password-1").status_code == 302


def test_add_user_creates_a_user_with_a_role_and_a_password_from_a_file(tmp_path, capsys):
    password_file = tmp_path / "password"
    password_file.write_text("a-long-enough-secret-1\n")
    call_command(
        "add_user",
        "dora",
        "--role",
        "operator",
        "--email",
        "dora@example.dk",
        "--password-file",
        str(password_file),
    )
    dora = get_user_model().objects.get(username="dora")
    assert role_of(dora) == Role.OPERATOR and dora.check_password("a-long-enough-secret-1")
    assert "a-long-enough-secret-1" not in capsys.readouterr().out
    call_command("add_user", "dora", "--role", "viewer")  # an existing user changes role, keeps the password
    dora.refresh_from_db()
    assert role_of(dora) == Role.VIEWER and dora.check_password("a-long-enough-secret-1")


def test_an_administrator_adds_a_viewer_on_the_users_page_and_deactivates_them(alice_client):
    response = alice_client.post(
        reverse("accounts:user-new"),
        {
            "username": "erik",
            "email": "erik@example.dk",
            "is_active": "on",
            "role": "Viewer",
            "password": "erik-has-a-long-password-7",
        },
    )
    assert response.status_code == 302
    erik = get_user_model().objects.get(username="erik")
    assert role_of(erik) == Role.VIEWER
    page = alice_client.get(reverse("accounts:users")).content.decode()
    assert "erik@example.dk" in page and "Viewer" in page
    alice_client.post(
        reverse("accounts:user-edit", args=[erik.pk]),
        {"username": "erik", "email": "erik@example.dk", "role": "Viewer"},  # is_active unticked
    )
    erik.refresh_from_db()
    assert not erik.is_active
    assert log_in(Client(), "erik", "erik-has-a-long-password-7").status_code == 200  # not let in


def test_an_administrator_cannot_take_away_their_own_role(alice_client, alice):
    response = alice_client.post(
        reverse("accounts:user-edit", args=[alice.pk]),
        {"username": "alice", "email": "alice@example.dk", "is_active": "on", "role": "Viewer"},
    )
    assert (
        response.status_code == 400
        and "cannot remove your own administrator role" in response.content.decode()
    )
    assert role_of(alice) == Role.ADMINISTRATOR


def test_every_page_has_a_content_security_policy_without_inline_script(alice_client, client):
    for response in (alice_client.get(reverse("home")), client.get(LOGIN)):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"
        assert ' style="' not in html, "inline style"
