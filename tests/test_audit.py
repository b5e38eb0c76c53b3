"""The audit log: what it records (logins, failed logins without the password, lockouts, users and roles,
key downloads, blocks, trust-store changes), that only administrators read it, and its filters."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry
from certificates.services import import_certificate_file
from certificates.trust_admin import add_trusted_ca, remove_trusted_ca

from . import pki
from .conftest import user_with_role

pytestmark = pytest.mark.django_db
AUDIT = reverse("audit")
LOGIN = reverse("login")


def audit_page(client: Client, **filters: str) -> str:
    response = client.get(AUDIT, filters)
    assert response.status_code == 200
    return response.content.decode()


def entries():  # type: ignore[no-untyped-def]
    """The entries a test made (not the login of the alice_client fixture itself)."""
    return AuditEntry.objects.exclude(action="login", actor_label="alice")


def actions() -> list[str]:
    return list(entries().order_by("pk").values_list("action", flat=True))


def test_logins_failed_logins_and_logouts_are_listed_without_the_password(alice_client, django_user_model):
    user_with_role(django_user_model, "bob", "Viewer")
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.post(LOGIN, {"username": "bob", "password": "not-bobs-Secret-42"}).status_code == 200
    assert client.post(LOGIN, {"username": "bob", "password": "bob-pw-1"}).status_code == 302
    client.post(reverse("logout"))
    assert actions() == ["login_failed", "login", "logout"]

    page = audit_page(alice_client)
    assert "Failed login" in page and "Logged in" in page and "Logged out" in page
    assert "<td>bob</td>" in page and "192.0.2.7" in page
    stored = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert "not-bobs-Secret-42" not in stored and "not-bobs-Secret-42" not in page
    assert "bob-pw-1" not in stored


def test_a_lockout_is_listed(settings, alice_client, django_user_model):
    settings.AXES_FAILURE_LIMIT = 2
    user_with_role(django_user_model, "bob", "Viewer")
    client = Client()
    for _ in range(2):
        client.post(LOGIN, {"username": "bob", "password": "wrong"})
    assert "Locked out" in audit_page(alice_client, action="locked_out")
    assert AuditEntry.objects.filter(action="locked_out", actor_label="bob").exists()


def test_users_and_role_changes_on_the_users_page_and_the_command_line(alice_client, tmp_path):
    alice_client.post(
        reverse("accounts:user-new"),
        {"username": "erik", "email": "e@example.dk", "is_active": "on", "role": "Viewer",
         "password": "erik-has-a-long-password-7"},
    )  # fmt: skip
    erik = get_user_model().objects.get(username="erik")
    edit = reverse("accounts:user-edit", args=[erik.pk])
    alice_client.post(
        edit, {"username": "erik", "email": "e@example.dk", "is_active": "on", "role": "Operator"}
    )
    alice_client.post(edit, {"username": "erik", "email": "e@example.dk", "role": "Operator"})
    password_file = tmp_path / "password"
    password_file.write_text("a-long-enough-secret-1\n")
    call_command("add_user", "dora", "--role", "viewer", "--password-file", str(password_file))
    call_command("add_user", "dora", "--role", "administrator")

    assert actions() == ["user_created", "role_changed", "user_deactivated", "user_created", "role_changed"]
    page = audit_page(alice_client)
    assert "erik: Viewer → Operator" in page and "User deactivated" in page
    assert "dora: Viewer → Administrator" in page and "manage.py add_user" in page
    assert "erik-has-a-long-password-7" not in json.dumps(list(AuditEntry.objects.values("detail")))
    assert AuditEntry.objects.filter(action="role_changed", actor__username="alice").count() == 1


def test_a_private_key_download_is_listed(alice_client):
    ca = pki.make_ca("Eksempel Root")
    leaf = pki.make_leaf(ca, pki.name("Lønsystem"))
    (outcome,) = import_certificate_file(pki.p12(leaf, [ca], "pw"), password="pw", actor="test")
    assert (
        alice_client.post(reverse("certificates:download-pkcs12", args=[outcome.certificate.pk])).status_code
        == 200
    )

    entry = AuditEntry.objects.get(action="key_downloaded")
    assert entry.actor_label == "alice" and entry.detail["certificate"] == outcome.certificate.pk
    assert entry.remote_addr == "127.0.0.1" and "api_token" not in entry.detail  # from where
    page = audit_page(alice_client, action="key_downloaded")
    assert "Private key downloaded" in page and "Lønsystem (serial number" in page
    assert outcome.certificate.get_absolute_url() in page


def test_a_block_is_listed(alice_client, renewable):
    certificate = renewable(name="Bogføring")
    response = alice_client.post(reverse("certificates:block", args=[certificate.pk]), follow=True)
    assert "“Bogføring” is blocked." in response.content.decode()
    entry = AuditEntry.objects.get(action="certificate_blocked")
    assert entry.actor_label == "alice" and entry.detail["common_name"] == "Bogføring"
    assert "Certificate blocked" in audit_page(alice_client, action="certificate_blocked")


def test_trust_store_changes_are_listed(alice):
    ca = pki.make_ca("Firma Root CA")
    row, _ = add_trusted_ca(ca.pem, alice)
    remove_trusted_ca(row, alice)
    entries = AuditEntry.objects.filter(action="trust_store_changed").order_by("pk")
    assert [(e.detail["change"], e.detail["name"], e.actor_label) for e in entries] == [
        ("added", "Firma Root CA", "alice"),
        ("removed", "Firma Root CA", "alice"),
    ]
    assert entries[0].summary == "Added: Firma Root CA"


def test_only_administrators_read_the_audit_log(alice_client, olga_client, vera_client):
    assert vera_client.get(AUDIT).status_code == 403
    assert olga_client.get(AUDIT).status_code == 403
    assert "Audit log" not in olga_client.get(reverse("home")).content.decode()
    assert 'href="/audit/"' in alice_client.get(reverse("home")).content.decode()


def test_the_filters_by_action_user_and_days(alice_client, django_user_model):
    user_with_role(django_user_model, "bob", "Viewer")
    with time_machine.travel(dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)):
        Client().post(LOGIN, {"username": "bob", "password": "wrong"})
    with time_machine.travel(dt.datetime(2026, 2, 10, 12, tzinfo=dt.UTC)):
        Client().post(LOGIN, {"username": "carl", "password": "wrong"})
        Client().post(LOGIN, {"username": "bob", "password": "bob-pw-1"})

    def shown(**filters: str) -> list[tuple[str, str]]:
        response = alice_client.get(AUDIT, filters)
        return [
            (e.action, e.actor_label)
            for e in response.context["page"].object_list
            if e.actor_label != "alice"
        ]

    assert shown() == [("login", "bob"), ("login_failed", "carl"), ("login_failed", "bob")]  # newest first
    assert shown(action="login_failed") == [("login_failed", "carl"), ("login_failed", "bob")]
    assert shown(user="BOB") == [("login", "bob"), ("login_failed", "bob")]
    assert shown(since="2026-02-01") == [("login", "bob"), ("login_failed", "carl")]
    assert shown(until="2026-01-10") == [("login_failed", "bob")]
    assert shown(action="login_failed", user="bob", since="2026-01-10", until="2026-01-31") == [
        ("login_failed", "bob")
    ]
    refused = alice_client.get(AUDIT, {"since": "2026-02-01", "until": "2026-01-01"})
    assert refused.status_code == 400 and "The end date is before the start date." in refused.content.decode()


def test_the_log_is_paged(settings, alice_client):
    settings.TRUSTVIEW_PAGE_SIZE = 2
    for name in ("a", "b", "c"):
        Client().post(LOGIN, {"username": name, "password": "wrong"})
    first = alice_client.get(AUDIT, {"action": "login_failed"})
    assert [e.actor_label for e in first.context["page"].object_list] == ["c", "b"]
    assert "action=login_failed&amp;page=2" in first.content.decode()
    second = alice_client.get(AUDIT, {"action": "login_failed", "page": "2"})
    assert [e.actor_label for e in second.context["page"].object_list] == ["a"]


def test_entries_are_append_only(alice):
    from accounts.audit import record
    from accounts.choices import AuditAction

    entry = record(AuditAction.LOGIN, actor=alice)
    entry.detail = {"changed": True}
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_text_from_outside_is_stored_safely(alice_client):
    from accounts.audit import record
    from accounts.choices import AuditAction

    # A NUL byte (PostgreSQL refuses it in text and JSON) and an over-long name, as a CA name might hold.
    entry = record(
        AuditAction.TRUST_STORE_CHANGED, label="eve\x00" + "x" * 400, change="added", name="CA\x00" * 200
    )
    entry.refresh_from_db()
    assert "\x00" not in entry.actor_label and len(entry.actor_label) <= 150
    assert "\x00" not in entry.detail["name"] and len(entry.detail["name"]) <= 300
    assert "Added: CA" in audit_page(alice_client, action="trust_store_changed")
