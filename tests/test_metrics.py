"""/metrics: x509-certificate-exporter's series per certificate in use, the portal's own figures, and who
may read them. Parsed with prometheus_client's own text parser, as Prometheus would read them."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from certificates.models import Certificate, Order, Organization, SchedulerHeartbeat
from certificates.services import import_certificate_file
from certificates.x509 import CertificateFileError

from .conftest import SKAT_CVR, SYSTEM_2023, SYSTEM_2026, oces3, user_with_role
from .test_certificate_list import make_inventory
from .test_organisation_limits import limited_client

pytestmark = pytest.mark.django_db

METRICS = "/metrics"


def scrape(client: Client, **extra: str) -> dict[str, list]:  # type: ignore[type-arg]
    """The families of one scrape, by name: each a list of (labels, value)."""
    response = client.get(METRICS, **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = b"".join(response.streaming_content).decode()
    return {
        family.name: [
            (sample.labels, sample.value) for sample in family.samples if sample.name == family.name
        ]
        or [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


@pytest.fixture
def scraper_allowed(settings):  # type: ignore[no-untyped-def]
    settings.TRUSTVIEW_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    return settings


def test_one_series_per_certificate_in_use_with_the_exporters_labels_and_none_for_superseded(
    vera_client,
):  # type: ignore[no-untyped-def]
    with time_machine.travel(dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC), tick=False):
        import_certificate_file(oces3(SYSTEM_2023), actor="test")
        import_certificate_file(oces3(SYSTEM_2026), actor="test")
        renewed = Certificate.objects.get(serial_number__startswith="4C5F96")
        assert Certificate.objects.get(serial_number__startswith="047748").state == "superseded"
        families = scrape(vera_client)
    (labels, not_after), *others = families["x509_cert_not_after"]
    assert others == []  # the superseded 2023 certificate has no series
    assert not_after == renewed.not_after.timestamp()
    assert labels["cvr"] == SKAT_CVR and labels["environment"] == "test" and labels["state"] == "valid"
    assert labels["serial_number"] == str(int("4C5F96B2FF8BFDE1E126D13A348D4270481D1545", 16))
    assert labels["subject_CN"] == "Skatteministeriet - B2B gateway TSE TEST"
    assert (labels["subject_O"], labels["subject_C"], labels["subject_OU"]) == (
        "Skatteforvaltningen",
        "DK",
        "",
    )
    assert (
        labels["issuer_CN"] == "Den Danske Stat OCES udstedende-CA 1" and labels["issuer_OU"] == "Test - cti"
    )
    assert families["x509_cert_not_before"] == [(labels, renewed.not_before.timestamp())]
    assert families["x509_cert_expired"] == [(labels, 0.0)]


def test_a_lapsed_certificate_shows_as_expired_and_a_blocked_one_not_at_all(vera_client):  # type: ignore[no-untyped-def]
    make_inventory(30)
    now = dt.datetime.now(dt.UTC)
    expected = {
        str(int(serial, 16))
        for serial in (
            Certificate.objects.current(now)
            | Certificate.objects.lapsed(now, since=now - dt.timedelta(days=30))
        ).values_list("serial_number", flat=True)
    }
    families = scrape(vera_client)
    expired = {labels["serial_number"]: value for labels, value in families["x509_cert_expired"]}
    assert set(expired) == expected
    lapsed = Certificate.objects.lapsed(now).values_list("serial_number", flat=True)
    assert lapsed and all(expired[str(int(serial, 16))] == 1.0 for serial in lapsed)
    blocked = Certificate.objects.filter(state="blocked").values_list("serial_number", flat=True)
    assert blocked and not {str(int(s, 16)) for s in blocked} & set(expired)


def test_organisation_limits_apply_to_the_certificate_series(django_user_model):  # type: ignore[no-untyped-def]
    make_inventory(20)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    every_other = list(Certificate.objects.order_by("pk").values_list("pk", flat=True))[::2]
    Certificate.objects.filter(pk__in=every_other).update(organization=theirs, cvr=theirs.cvr)
    families = scrape(limited_client(django_user_model, "Viewer", ours))
    cvrs = {labels["cvr"] for labels, _ in families["x509_cert_not_after"]}
    assert cvrs == {ours.cvr}


def test_an_api_token_scrapes_as_its_user_and_a_revoked_one_gets_401(django_user_model):  # type: ignore[no-untyped-def]
    from accounts.models import limit_to_organisations
    from accounts.tokens import create_token, revoke_token

    make_inventory(6)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    Certificate.objects.filter(pk=Certificate.objects.order_by("pk").first().pk).update(  # type: ignore[union-attr]
        organization=theirs, cvr=theirs.cvr
    )
    scraper = user_with_role(django_user_model, "prometheus", "Viewer")
    limit_to_organisations(scraper, [ours])
    row, token = create_token(scraper, "prometheus")
    # No session, no allowed address: the token alone, with its user's organisation limits.
    families = scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="203.0.113.5")
    assert {labels["cvr"] for labels, _ in families["x509_cert_not_after"]} == {ours.cvr}
    revoke_token(row, actor=scraper)
    refused = Client().get(METRICS, HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR="203.0.113.5")
    assert refused.status_code == 401 and b"x509" not in refused.content
    assert b"revoked" in refused.content


def test_the_portals_own_figures(vera_client):  # type: ignore[no-untyped-def]
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    Order.objects.create(certificate=outcome.certificate, state="failed", requested_by_label="test")
    Order.objects.create(certificate=outcome.certificate, attempts=2, requested_by_label="test")
    for _ in range(2):
        with pytest.raises(CertificateFileError):
            import_certificate_file(b"not a certificate", actor="test")
    SchedulerHeartbeat.record(SchedulerHeartbeat.RENEWAL_SWEEP)
    families = scrape(vera_client)
    orders = {labels["state"]: value for labels, value in families["trustview_renewal_orders"]}
    assert orders == {"pending": 1, "in_progress": 0, "issued": 0, "failed": 1}
    assert families["trustview_renewal_orders_retrying"] == [({}, 1.0)]
    assert families["trustview_renewal_failures"] == [({}, 1.0)]
    assert families["trustview_import_errors"] == [({}, 2.0)]
    (_, age), *_ = families["trustview_last_sweep_age_seconds"]
    assert 0 <= age < 60
    assert {labels["kind"] for labels, _ in families["trustview_alerts_sent"]} == {
        "expiry",
        "lapsed",
        "renewal_late",
    }


def test_the_number_of_queries_does_not_grow_with_the_inventory(vera_client):  # type: ignore[no-untyped-def]
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(vera_client)
        return len(captured)

    make_inventory(10)
    small = queries()
    Certificate.objects.all().delete()
    Organization.objects.all().delete()
    make_inventory(400)
    assert queries() == small


def test_who_may_read_the_metrics(django_user_model, scraper_allowed):  # type: ignore[no-untyped-def]
    make_inventory(6)
    anonymous = Client()
    refused = anonymous.get(METRICS, REMOTE_ADDR="203.0.113.5")
    assert refused.status_code == 401 and b"x509" not in refused.content
    assert refused["WWW-Authenticate"].startswith("Bearer")
    # From an allowed address, a scraper without a login reads every certificate's series.
    assert len(scrape(anonymous)["x509_cert_not_after"]) > 0
    # A logged-in user without a role is refused, even from an allowed address.
    nobody = Client()
    nobody.force_login(django_user_model.objects.create_user("no-role", "n@example.dk", "x-pw-1"))
    forbidden = nobody.get(METRICS)
    assert forbidden.status_code == 403 and b"x509" not in forbidden.content
    assert Client().post(METRICS).status_code == 405


def test_behind_a_proxy_only_the_address_the_proxy_added_counts(scraper_allowed):  # type: ignore[no-untyped-def]
    scraper_allowed.TRUSTVIEW_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    client = Client()
    spoofed = client.get(METRICS, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.5")
    assert spoofed.status_code == 401
    assert client.get(METRICS, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_nobody_scrapes_without_a_login_by_default(settings):  # type: ignore[no-untyped-def]
    assert settings.TRUSTVIEW_METRICS_ALLOWED_NETWORKS == []
    assert Client().get(METRICS).status_code == 401


def test_a_logged_in_user_who_has_not_given_the_two_factor_code_gets_the_code_step(django_user_model):  # type: ignore[no-untyped-def]
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = user_with_role(django_user_model, "tess", "Viewer")
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    response = client.get(METRICS)
    assert response.status_code == 302 and "two-factor" in response["Location"]


def test_the_shipped_alert_rules_and_dashboard_use_only_metrics_that_exist(vera_client):  # type: ignore[no-untyped-def]
    import json
    import re
    from pathlib import Path

    import yaml

    make_inventory(3)
    SchedulerHeartbeat.record(SchedulerHeartbeat.RENEWAL_SWEEP)
    response = vera_client.get(METRICS)
    exposed = {
        sample.name
        for family in text_string_to_metric_families(b"".join(response.streaming_content).decode())
        for sample in family.samples
    }
    docs = Path(__file__).resolve().parent.parent / "docs"
    rules = yaml.safe_load((docs / "prometheus-alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\b(?:x509|trustview)_\w+", expr)}
    assert used and used <= exposed, used - exposed
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "CertificateExpiringSoon",
        "CertificateExpired",
        "CertificateRenewalFailing",
        "RenewalSweepStale",
    } <= alerts
