"""The REST API (issue 13, item 1): a script with a token does what a person does on the pages, with the
same roles, organisation limits, sentences and audit entries; errors are problem+json (RFC 9457)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from accounts.models import ApiToken, AuditEntry, limit_to_organisations
from accounts.tokens import create_token, revoke_token
from api.models import IdempotentRequest
from certificates.choices import OrderState
from certificates.models import Certificate, Order, Organization
from certificates.renewal import advance_order
from certificates.services import import_certificate_file

from . import pki
from .conftest import ALL_FIXTURES, SKAT_CVR, SYSTEM_2023, SYSTEM_2026, oces3, user_with_role

pytestmark = pytest.mark.django_db


def api_client(user) -> Client:  # type: ignore[no-untyped-def]
    _row, token = create_token(user, "test")
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def fixtures_imported():  # type: ignore[no-untyped-def]
    for name in ALL_FIXTURES:
        import_certificate_file(oces3(name), actor="test")
    return {c.serial_number: c for c in Certificate.objects.all()}


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert body["detail"]
    return body


def test_a_script_lists_what_expires_within_30_days_renews_one_and_polls_its_order(
    renewable, simulator, django_user_model
):
    simulator.cli("set-renewal-delay", "--seconds", "0")
    simulator.cli("set-validity", "--minutes", str(20 * 24 * 60))
    soon = renewable(cvr="31313131", name="Snart")
    simulator.cli("set-validity", "--default")
    import_certificate_file(oces3(SYSTEM_2026), actor="test")  # valid to 2029
    script = api_client(user_with_role(django_user_model, "script", "Operator"))

    listed = script.get("/api/v1/certificates/", {"expires_within": 30})
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["results"]] == [soon.pk]
    assert listed.json()["results"][0]["status"] == "expiring"

    renew = f"/api/v1/certificates/{soon.pk}/renew/"
    answer = script.post(renew, headers={"Idempotency-Key": "run-42"})
    assert answer.status_code == 202 and answer.json()["created"] is True
    order_url = answer["Location"]
    again = script.post(renew, headers={"Idempotency-Key": "run-42"})
    assert again.json() == answer.json() and again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    reused = script.post(
        renew, {"other": 1}, content_type="application/json", headers={"Idempotency-Key": "run-42"}
    )
    assert assert_problem(reused, 422)["code"] == "idempotency_key_reused"

    for _step in range(12):  # the worker's steps, taken in-process
        order = script.get(order_url).json()
        if not order["is_open"]:
            break
        advance_order(order["id"], now=max(timezone.now(), Order.objects.get(pk=order["id"]).next_attempt_at))
    assert order["state"] == OrderState.ISSUED and order["new_certificate"]
    detail = script.get(f"/api/v1/certificates/{order['new_certificate']}/").json()
    assert [link["id"] for link in detail["renewal_chain"]] == [soon.pk, order["new_certificate"]]
    assert detail["days_left"] > 1000 and detail["status"] == "valid"
    assert any(e["kind"] == "renewed" for e in detail["events"])
    assert IdempotentRequest.objects.count() == 1


def test_roles_and_tokens_decide_what_answers(fixtures_imported, django_user_model):
    leaf = Certificate.objects.get(
        serial_number__in=fixtures_imported, subject_cn__icontains="", not_after__year=2029
    )
    viewer = user_with_role(django_user_model, "vera", "Viewer")
    renew = f"/api/v1/certificates/{leaf.pk}/renew/"
    refused = assert_problem(api_client(viewer).post(renew), 403)
    assert refused["code"] == "permission_denied"
    assert api_client(viewer).get(f"/api/v1/certificates/{leaf.pk}/").status_code == 200

    operator = user_with_role(django_user_model, "olga", "Operator")
    not_possible = assert_problem(api_client(operator).post(renew), 409)
    assert "holds no private key" in not_possible["detail"]  # the page's sentence
    assert api_client(operator).post(f"/api/v1/certificates/{leaf.pk}/pkcs12/").status_code == 403
    assert api_client(operator).post(f"/api/v1/certificates/{leaf.pk}/block/").status_code == 403

    row, token = create_token(operator, "old", expires_days=1)
    expired = Client(headers={"Authorization": f"Bearer {token}"})
    row.expires_at = timezone.now() - dt.timedelta(seconds=1)
    row.save()
    unauthorised = expired.get("/api/v1/certificates/")
    assert_problem(unauthorised, 401)
    assert unauthorised["WWW-Authenticate"].startswith("Bearer")
    _row, token = create_token(operator, "revoked")
    revoke_token(_row, actor=operator)
    assert_problem(Client(headers={"Authorization": f"Bearer {token}"}).get("/api/v1/orders/"), 401)
    assert_problem(Client().get("/api/v1/certificates/"), 401)


def test_organisation_limits_hide_other_organisations(fixtures_imported, django_user_model):
    other = Certificate.objects.get(cvr=SKAT_CVR, not_after__year=2026)
    Certificate.objects.filter(pk=other.pk).update(
        organization=Organization.objects.create(cvr="41414141", name="Andet"), cvr="41414141"
    )
    limited = user_with_role(django_user_model, "lis", "Operator")
    limit_to_organisations(limited, [Organization.objects.get(cvr=SKAT_CVR)])
    script = api_client(limited)
    listed = script.get("/api/v1/certificates/", {"page_size": 500}).json()["results"]
    assert [c["cvr"] for c in listed] == [SKAT_CVR]
    assert_problem(script.get(f"/api/v1/certificates/{other.pk}/"), 404)
    assert_problem(script.post(f"/api/v1/certificates/{other.pk}/renew/"), 404)
    assert {o["cvr"] for o in script.get("/api/v1/organisations/").json()["results"]} == {SKAT_CVR}
    assert script.get("/api/v1/events/", {"certificate": other.pk}).json()["results"] == []
    assert script.get("/api/v1/events/").json()["count"] >= 1
    assert Order.objects.count() == 0


def test_import_detail_settings_and_pkcs12_use_the_pages_services(django_user_model):
    operator = api_client(user_with_role(django_user_model, "olga", "Operator"))
    answer = operator.post("/api/v1/certificates/import/", {"file": _upload(SYSTEM_2023)})
    assert answer.status_code == 201 and answer.json()["certificates"][0]["message"].startswith("Imported")
    again = operator.post("/api/v1/certificates/import/", {"file": _upload(SYSTEM_2023)})
    assert again.status_code == 200 and again.json()["certificates"][0]["created"] is False
    bad = assert_problem(operator.post("/api/v1/certificates/import/", {"file": _upload(b"not a cert")}), 400)
    assert bad["errors"]["file"]

    pk = answer.json()["certificates"][0]["id"]
    settings_url = f"/api/v1/certificates/{pk}/renewal-settings/"
    invalid = operator.put(
        settings_url, {"auto_renew": True, "renew_before_days": 0}, content_type="application/json"
    )
    assert "renew_before_days" in assert_problem(invalid, 400)["errors"]
    saved = operator.put(
        settings_url, {"auto_renew": False, "renew_before_days": 45}, content_type="application/json"
    )
    assert saved.json()["changed"] is True and not Certificate.objects.get(pk=pk).auto_renew

    root = pki.make_ca()
    leaf = pki.make_leaf(root)
    (imported,) = import_certificate_file(leaf.pem + leaf.key_pem(), actor="test")
    held = imported.certificate
    admin = api_client(user_with_role(django_user_model, "alice", "Administrator"))
    made = admin.post(f"/api/v1/certificates/{held.pk}/pkcs12/")
    assert made.status_code == 200 and made["Cache-Control"] == "no-store"
    body = made.json()
    key, cert, _chain = pkcs12.load_key_and_certificates(
        base64.b64decode(body["pkcs12"]), body["password"].encode()
    )
    assert key is not None and cert.serial_number == int(held.serial_number, 16)
    entry = AuditEntry.objects.get(action="key_downloaded", actor_label="alice")
    # From where, and with which token: a stolen token's downloads can be told from the user's own.
    token = ApiToken.objects.get(user__username="alice")
    assert entry.remote_addr == "127.0.0.1" and entry.detail["api_token"] == token.prefix


def test_issue_with_pin_answers_the_pages_sentences_and_once_per_key(
    simulator, mitid_settings, django_user_model
):
    operator = api_client(user_with_role(django_user_model, "olga", "Operator"))
    profile = simulator.create_profile(cvr="61616161", name="Løn")
    wrong = {"environment": "test", "reference_number": profile["reference_number"], "pin": "WRONG-PIN"}
    refused = assert_problem(
        operator.post("/api/v1/certificates/issue/", wrong, content_type="application/json"), 422
    )
    assert refused["code"] == "invalid_pin" and "WRONG-PIN" not in refused["detail"]
    good = {**wrong, "pin": profile["pin"]}
    issued = operator.post(
        "/api/v1/certificates/issue/",
        good,
        content_type="application/json",
        headers={"Idempotency-Key": "k1"},
    )
    assert issued.status_code == 201 and issued.json()["certificate"]["cvr"] == "61616161"
    replay = operator.post(
        "/api/v1/certificates/issue/",
        good,
        content_type="application/json",
        headers={"Idempotency-Key": "k1"},
    )
    assert replay.json() == issued.json() and Certificate.objects.count() == 1
    assert profile["pin"] not in str(IdempotentRequest.objects.values_list("fingerprint", "response").get())


def test_the_session_needs_csrf_for_changes(alice, fixtures_imported):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/api/v1/certificates/").status_code == 200
    leaf = Certificate.objects.filter(not_after__year=2029).get()
    assert_problem(browser.post(f"/api/v1/certificates/{leaf.pk}/block/"), 403)
    assert Certificate.objects.get(pk=leaf.pk).state == "active"


def _upload(name_or_bytes):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = oces3(name_or_bytes) if isinstance(name_or_bytes, str) else name_or_bytes
    return SimpleUploadedFile("cert.pem", data)


def test_the_list_filters_and_pages_like_the_list_page(fixtures_imported, django_user_model):
    script = api_client(user_with_role(django_user_model, "vera", "Viewer"))
    expired = script.get("/api/v1/certificates/", {"status": "expired"}).json()
    assert [c["serial_number"] for c in expired["results"]] == list(
        Certificate.objects.filter(not_after__year=2026).values_list("serial_number", flat=True)
    )
    paged = script.get("/api/v1/certificates/", {"page_size": 2, "sort": "name"}).json()
    assert paged["count"] == 4 and len(paged["results"]) == 2 and paged["next"]
    invalid = assert_problem(script.get("/api/v1/certificates/", {"expires_within": "soon"}), 400)
    assert "expires_within" in invalid["errors"]
    assert script.get("/api/v1/certificates/", {"q": SYSTEM_2026[:0] + "19552101"}).json()["count"] == 2


def test_each_certificate_says_where_it_stands_as_its_page_does(fixtures_imported, django_user_model):
    from django.test import Client

    viewer = user_with_role(django_user_model, "vera", "Viewer")
    script = api_client(viewer)
    browser = Client()
    browser.force_login(viewer)
    listed = script.get("/api/v1/certificates/").json()["results"]
    assert listed and all(set(c["situation"]) == {"key", "label", "headline"} for c in listed)
    for entry in listed:
        certificate = Certificate.objects.get(pk=entry["id"])
        assert entry["situation"] == certificate.situation().as_dict()
        detail = script.get(f"/api/v1/certificates/{entry['id']}/").json()
        assert detail["situation"] == entry["situation"]
        # The page says the same sentence (HTML-escaped there).
        page = browser.get(f"/certificates/{entry['id']}/").content.decode()
        assert escape(entry["situation"]["headline"]) in page


def test_a_session_that_still_owes_its_two_factor_code_opens_nothing(alice, fixtures_imported):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=alice, name="trustview", confirmed=True)
    browser = Client()
    browser.force_login(alice)  # the password step only
    refused = assert_problem(browser.get("/api/v1/certificates/"), 401)
    assert "two-factor" in refused["detail"]
    assert api_client(alice).get("/api/v1/certificates/").status_code == 200  # a token made after it


def test_odd_query_parameters_and_bodies_get_a_sentence_not_a_server_error(
    fixtures_imported, django_user_model
):
    script = api_client(user_with_role(django_user_model, "olga", "Operator"))
    script.raise_request_exception = False
    for url in ("/api/v1/orders/", "/api/v1/events/"):
        # "²" is a digit to str.isdigit() but not to int(): it used to answer 500.
        assert "certificate" in assert_problem(script.get(url, {"certificate": "²"}), 400)["errors"]
    # An unknown state was passed to the database as it came (a NUL byte: 500 on PostgreSQL).
    assert "state" in assert_problem(script.get("/api/v1/orders/", {"state": "x\x00"}), 400)["errors"]
    assert script.get("/api/v1/orders/", {"state": "issued", "certificate": "7"}).json()["count"] == 0
    pk = Certificate.objects.first().pk  # type: ignore[union-attr]
    for url, send in (
        ("/api/v1/certificates/issue/", "post"),
        (f"/api/v1/certificates/{pk}/renewal-settings/", "put"),
    ):
        refused = assert_problem(getattr(script, send)(url, "[1]", content_type="application/json"), 400)
        assert "JSON object" in refused["detail"]


def test_a_user_limited_to_some_organisations_issues_only_for_them(
    simulator, mitid_settings, django_user_model
):
    """Import refuses another organisation's certificate to a limited user; issuing did not (on the page
    nor in the API): the certificate and its private key went into that organisation's inventory."""
    from mitid.models import CertificateProfile

    limited = user_with_role(django_user_model, "lis", "Operator")
    limit_to_organisations(limited, [Organization.objects.create(cvr="71717171", name="Egen")])
    script = api_client(limited)
    issue = "/api/v1/certificates/issue/"
    other = simulator.create_profile(cvr="72727272", name="Andet")
    body = {"environment": "test", "reference_number": other["reference_number"], "pin": other["pin"]}
    refused = assert_problem(script.post(issue, body, content_type="application/json"), 422)
    assert refused["code"] == "organisation_not_allowed" and "administrator" in refused["detail"]
    assert Certificate.objects.count() == 0 and CertificateProfile.objects.count() == 0

    # A profile the portal knows to be another organisation's is refused before MitID is asked (which
    # would have answered invalid_pin).
    other_org = Organization.objects.create(cvr="72727272", name="Andet")
    CertificateProfile.objects.create(reference_number=other["reference_number"], organization=other_org)
    known = {**body, "pin": "NOT-ASKED"}
    refused = assert_problem(script.post(issue, known, content_type="application/json"), 422)
    assert refused["code"] == "organisation_not_allowed"


def test_json_nested_too_deep_for_the_parser_gets_a_sentence(django_user_model):
    script = api_client(user_with_role(django_user_model, "olga", "Operator"))
    script.raise_request_exception = False
    deep = "[" * 100_000 + "]" * 100_000  # 200 kB, within the size limit, deeper than the parser can go
    refused = script.post("/api/v1/certificates/issue/", deep, content_type="application/json")
    assert assert_problem(refused, 400)["code"] == "parse_error"


def test_one_user_cannot_make_the_idempotency_table_grow_without_bound(monkeypatch, django_user_model):
    from api import idempotency
    from certificates.choices import OrderKind

    monkeypatch.setattr(idempotency, "MAX_KEPT_PER_USER", 3)
    (imported,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    Order.objects.create(certificate=imported.certificate, kind=OrderKind.RENEW)  # in progress
    script = api_client(user_with_role(django_user_model, "olga", "Operator"))
    renew = f"/api/v1/certificates/{imported.certificate.pk}/renew/"
    for n in range(5):  # each answered 202 "already in progress", and kept
        assert script.post(renew, headers={"Idempotency-Key": f"k{n}"}).status_code == 202
    assert sorted(IdempotentRequest.objects.values_list("key", flat=True)) == ["k2", "k3", "k4"]
