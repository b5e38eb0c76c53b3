"""/healthz and /readyz as a load balancer, a container healthcheck or a monitoring system sees them."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from certificates.renewal import sweep
from trustview.celery import app

from .support.processes import free_port


def test_healthz_answers_without_login_and_without_the_database(client):
    # No django_db mark: any query would fail this test, so liveness cannot depend on the database.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ready_once_a_sweep_has_run(client):
    sweep()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    assert body["checks"]["sweep"]["ok"] is True
    assert body["checks"]["sweep"]["age_seconds"] < 5
    assert body["checks"]["sweep"]["max_age_seconds"] == 180  # 60 s sweeps times a margin of 3
    assert dt.datetime.fromisoformat(body["checks"]["sweep"]["last_success"]) <= timezone.now()


@pytest.mark.django_db
def test_readyz_says_no_sweep_yet_on_a_fresh_installation(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["sweep"]["ok"] is False
    assert body["checks"]["sweep"]["error"] == "no sweep yet"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


@pytest.mark.django_db
def test_readyz_fails_when_the_last_sweep_is_older_than_its_interval_times_the_margin(client, settings):
    settings.TRUSTVIEW_SWEEP_SECONDS = 60
    settings.TRUSTVIEW_READY_SWEEP_MARGIN = 3
    swept_at = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(swept_at, tick=False):
        sweep()
    with time_machine.travel(swept_at + dt.timedelta(seconds=170), tick=False):
        assert client.get("/readyz").status_code == 200
    with time_machine.travel(swept_at + dt.timedelta(seconds=190), tick=False):
        response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["sweep"]
    assert check["ok"] is False and check["age_seconds"] == 190 and check["max_age_seconds"] == 180
    assert "too old" in check["error"]


@pytest.mark.django_db
def test_readyz_reports_the_broker_down_and_never_its_address_or_password(client, monkeypatch):
    closed_port = free_port()  # nothing listens there
    monkeypatch.setattr(app.conf, "broker_url", f"redis://:broker-password-77@127.0.0.1:{closed_port}/0")
    sweep()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert checks["database"]["ok"] is True and checks["sweep"]["ok"] is True
    assert b"broker-password-77" not in response.content and str(closed_port).encode() not in response.content
