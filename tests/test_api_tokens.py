"""API tokens (issue 13, item 2): made on the API tokens page or by `manage.py create_api_token`, shown
once, stored as a hash, revocable, with an expiry and a last use; a token acts as its active user."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry
from accounts.tokens import create_token, user_for_bearer, user_for_token

pytestmark = pytest.mark.django_db


def test_a_user_makes_a_token_on_the_page_sees_it_once_and_revokes_it(olga_client):
    response = olga_client.post(reverse("api-tokens"), {"name": "pipeline", "expires_days": "30"})
    page = response.content.decode()
    token = page.split('<code class="mono">', 1)[1].split("</code>", 1)[0]
    assert token.startswith("tv_") and len(token) > 40
    assert "shown only this once" in page
    row = ApiToken.objects.get()
    assert row.digest == hashlib.sha256(token.encode()).hexdigest() and token not in row.digest
    assert (row.user.username, row.name, row.prefix) == ("olga", "pipeline", token[:9])
    assert dt.timedelta(days=29) < row.expires_at - timezone.now() <= dt.timedelta(days=30)
    assert response["Cache-Control"].startswith("max-age=0")

    again = olga_client.get(reverse("api-tokens")).content.decode()
    assert token not in again and f"{row.prefix}…" in again and "pipeline" in again
    assert "Stopped" not in again  # her role and organisations are those it was made for
    assert user_for_token(token).username == "olga"

    olga_client.post(reverse("api-token-revoke", args=[row.pk]))
    assert user_for_token(token) is None
    assert "Revoked" in olga_client.get(reverse("api-tokens")).content.decode()
    entries = AuditEntry.objects.exclude(action="login").order_by("id")
    assert [e.action for e in entries] == ["api_token_created", "api_token_revoked"]
    assert all(token not in str(e.detail) for e in entries)
    assert entries[0].summary == f"“pipeline” ({row.prefix}…) of olga"


def test_nobody_revokes_or_sees_another_users_token(olga_client, vera_client, django_user_model):
    vera = django_user_model.objects.get(username="vera")
    row, token = create_token(vera, "vera's")
    assert "vera&#x27;s" not in olga_client.get(reverse("api-tokens")).content.decode()
    assert olga_client.post(reverse("api-token-revoke", args=[row.pk])).status_code == 404
    assert user_for_token(token) == vera


def test_expired_revoked_unknown_and_inactive_users_tokens_open_nothing(django_user_model):
    user = django_user_model.objects.create_user("script", "s@example.dk", "x-pw-1")
    _, token = create_token(user, "t", expires_days=1)
    assert user_for_token(token) == user
    assert user_for_token(token, now=timezone.now() + dt.timedelta(days=1, seconds=1)) is None
    assert user_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert user_for_token("not-a-token") is None
    user.is_active = False
    user.save()
    assert user_for_token(token) is None


def test_a_bearer_header_names_the_user_and_last_use_is_written_at_most_once_a_minute(django_user_model):
    user = django_user_model.objects.create_user("script", "s@example.dk", "x-pw-1")
    row, token = create_token(user, "t")
    request = RequestFactory().get("/", headers={"Authorization": f"Bearer {token}"})
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert user_for_bearer(request) == user
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        user_for_bearer(request)
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        user_for_bearer(request)
    row.refresh_from_db()
    assert row.last_used_at == start + dt.timedelta(seconds=61)
    assert user_for_bearer(RequestFactory().get("/", headers={"Authorization": f"Basic {token}"})) is None


def test_the_command_prints_a_working_token_and_audits_it(django_user_model):
    user = django_user_model.objects.create_user("deploy", "d@example.dk", "x-pw-1")
    out = StringIO()
    call_command("create_api_token", "deploy", "--name", "CI", "--expires-days", "7", stdout=out)
    token = out.getvalue().strip()
    assert user_for_token(token) == user
    row = ApiToken.objects.get()
    assert row.name == "CI" and row.expires_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_label, entry.detail["user"]) == (
        "api_token_created",
        "manage.py",
        "deploy",
    )


def test_a_token_stops_when_its_users_role_or_organisations_change(olga_client, django_user_model):
    """A token made by an operator for a script must not gain the power to download private keys (or to
    reach more organisations) when its user is promoted: it stands for the access it was made with."""
    from accounts.models import limit_to_organisations
    from accounts.roles import set_role
    from certificates.models import Organization

    olga = django_user_model.objects.get(username="olga")
    own = Organization.objects.create(cvr="11111111", name="Egen")
    limit_to_organisations(olga, [own])
    _row, token = create_token(olga, "ci")
    assert user_for_token(token) == olga

    set_role(olga, "Administrator")
    assert user_for_token(token) is None
    set_role(olga, "Operator")
    assert user_for_token(token) == olga  # back to what it was made for

    limit_to_organisations(olga, [own, Organization.objects.create(cvr="22222222", name="Anden")])
    assert user_for_token(token) is None
    limit_to_organisations(olga, None)  # no limit: every organisation
    assert user_for_token(token) is None
    page = olga_client.get(reverse("api-tokens")).content.decode()
    assert "role or organisations changed" in page
    olga = django_user_model.objects.get(pk=olga.pk)  # as the next request sees her
    _, fresh = create_token(olga, "ci again")
    assert user_for_token(fresh) == olga


def test_deactivating_a_user_revokes_their_tokens_for_good(alice_client, django_user_model):
    """A token must not come back to life when a deactivated user is reactivated months later."""
    from accounts.roles import set_role

    erik = django_user_model.objects.create_user("erik", "erik@example.dk", "erik-pw-1")
    set_role(erik, "Viewer")
    row, token = create_token(erik, "nightly")
    edit = reverse("accounts:user-edit", args=[erik.pk])
    alice_client.post(edit, {"username": "erik", "email": "erik@example.dk", "role": "Viewer"})
    assert user_for_token(token) is None
    alice_client.post(
        edit, {"username": "erik", "email": "erik@example.dk", "role": "Viewer", "is_active": "on"}
    )
    assert django_user_model.objects.get(pk=erik.pk).is_active
    assert user_for_token(token) is None
    row.refresh_from_db()
    assert row.revoked_at is not None
    revoked = AuditEntry.objects.get(action="api_token_revoked")
    assert revoked.detail["user"] == "erik" and revoked.actor_label == "alice"
