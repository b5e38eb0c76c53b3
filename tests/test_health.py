"""/healthz, /readyz and /scheduler as a load balancer, a container healthcheck or a monitor sees them."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from certificates import tasks
from certificates.models import Incident
from certificates.renewal import sweep
from trustview import health
from trustview.celery import app

from .support.processes import free_port


def test_healthz_answers_without_login_and_without_the_database(client):
    # No django_db mark: any query would fail this test, so liveness cannot depend on the database.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ready_on_a_fresh_installation_without_waiting_for_a_sweep(client):
    # A web process that can serve is ready at once: the scheduler's freshness is /scheduler's question.
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": {"ok": True}, "broker": {"ok": True}}}


@pytest.fixture
def started_long_ago(monkeypatch):  # type: ignore[no-untyped-def]
    """The web process started well before the test, so /scheduler's grace period is over."""
    monkeypatch.setattr(health, "STARTED_AT", dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


@pytest.mark.django_db
def test_scheduler_is_fresh_once_a_sweep_has_run(client, started_long_ago):
    sweep()
    response = client.get("/scheduler")
    assert response.status_code == 200, response.content
    check = response.json()["sweep"]
    assert response.json()["status"] == "ok" and check["ok"] is True
    assert check["age_seconds"] < 5
    assert check["max_age_seconds"] == 180  # 60 s sweeps times a margin of 3
    assert dt.datetime.fromisoformat(check["last_success"]) <= timezone.now()
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_scheduler_gives_a_fresh_start_a_grace_period_then_says_no_sweep_yet(client, settings, monkeypatch):
    settings.TRUSTVIEW_SCHEDULER_GRACE_SECONDS = 300
    started = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(health, "STARTED_AT", started)
    with time_machine.travel(started + dt.timedelta(seconds=60), tick=False):
        response = client.get("/scheduler")
    assert response.status_code == 200
    assert response.json()["sweep"]["starting"] is True
    with time_machine.travel(started + dt.timedelta(seconds=301), tick=False):
        response = client.get("/scheduler")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["sweep"]["error"] == "no sweep yet"


@pytest.mark.django_db
def test_scheduler_fails_when_the_last_sweep_is_older_than_its_interval_times_the_margin(
    client, settings, started_long_ago
):
    settings.TRUSTVIEW_SWEEP_SECONDS = 60
    settings.TRUSTVIEW_SCHEDULER_SWEEP_MARGIN = 3
    swept_at = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(swept_at, tick=False):
        sweep()
    with time_machine.travel(swept_at + dt.timedelta(seconds=170), tick=False):
        assert client.get("/scheduler").status_code == 200
    with time_machine.travel(swept_at + dt.timedelta(seconds=190), tick=False):
        response = client.get("/scheduler")
        assert client.get("/readyz").status_code == 200  # the web process still serves
    assert response.status_code == 503
    check = response.json()["sweep"]
    assert check["ok"] is False and check["age_seconds"] == 190 and check["max_age_seconds"] == 180
    assert "too old" in check["error"]


@pytest.mark.django_db
def test_a_stopped_scheduler_is_e_mailed_once_per_outage_and_its_return_once(
    client, settings, started_long_ago
):
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    swept_at = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(swept_at, tick=False):
        sweep()
    for minutes in (5, 6, 30):  # a monitor polling /scheduler while beat is down
        with time_machine.travel(swept_at + dt.timedelta(minutes=minutes), tick=False):
            assert client.get("/scheduler").status_code == 503
    (stopped,) = mail.outbox
    assert stopped.subject == "[trustview] The scheduler has stopped: no renewals, no alerts"
    assert "The renewal sweep last ran at 2030-05-01" in stopped.body
    with time_machine.travel(swept_at + dt.timedelta(minutes=40), tick=False):
        tasks.sweep()  # beat is back: the sweep task closes the outage
        tasks.sweep()
        assert client.get("/scheduler").status_code == 200
    assert [m.subject for m in mail.outbox] == [
        "[trustview] The scheduler has stopped: no renewals, no alerts",
        "[trustview] The scheduler runs again",
    ]
    assert Incident.objects.get().closed_at is not None


@pytest.mark.django_db
def test_readyz_reports_the_broker_down_and_never_its_address_or_password(client, monkeypatch):
    closed_port = free_port()  # nothing listens there
    monkeypatch.setattr(app.conf, "broker_url", f"redis://:broker-password-77@127.0.0.1:{closed_port}/0")
    # As settings.py configures a Redis broker: the embedded broker's transport class is not named.
    monkeypatch.setitem(app.conf, "broker_transport", None)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["database"]["ok"] is True
    assert b"broker-password-77" not in response.content and str(closed_port).encode() not in response.content
