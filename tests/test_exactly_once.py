"""Renewal exactly once on every path (issue 11, item 8): a stale copy never opens a second order, every
step re-checks the certificate, a stored certificate completes its order, transient means what
docs/protocol.md says, and backoff never schedules past the last useful moment before expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from certificates import renewal
from certificates.choices import EventKind, LifecycleState, OrderState, Source
from certificates.issuers import issuer_for
from certificates.models import Certificate, Event, Order
from certificates.renewal import RenewalNotPossible, advance_order, next_step_at, request_renewal
from certificates.services import store_bundle

from .test_renewal import run_to_completion

pytestmark = pytest.mark.django_db


def test_a_copy_read_before_the_renewal_cannot_open_a_second_order(renewable, simulator, alice):
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    stale = Certificate.objects.get(pk=old.pk)  # a view or the sweep read it before it was renewed
    first = run_to_completion(request_renewal(old, alice)[0])
    assert first.state == OrderState.ISSUED
    at_the_ca = simulator.cli("status")["environments"]["test"]

    assert stale.state == LifecycleState.ACTIVE  # the copy still says so
    with pytest.raises(RenewalNotPossible, match="already been renewed"):
        request_renewal(stale, alice)
    assert Order.objects.count() == 1
    assert simulator.cli("status")["environments"]["test"] == at_the_ca


def test_an_order_of_a_certificate_superseded_meanwhile_ends_without_asking_the_ca(
    renewable, simulator, alice
):
    """An order opened before the fix (or by any other path) for a certificate that has since been
    renewed: its next step fails it with a sentence, asks the CA nothing, and e-mails nobody."""
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    run_to_completion(request_renewal(old, alice)[0])
    at_the_ca = simulator.cli("status")["environments"]["test"]
    stray = Order.objects.create(certificate=old, requested_by_label="scheduler")

    assert advance_order(stray.pk) is None
    stray.refresh_from_db()
    assert stray.state == OrderState.FAILED and "already been renewed" in stray.last_error
    assert simulator.cli("status")["environments"]["test"] == at_the_ca
    assert not [m for m in mail.outbox if "Renewal failed" in m.subject]
    assert Certificate.objects.count() == 2


def test_an_order_whose_new_certificate_is_already_stored_completes_with_it(renewable, simulator, alice):
    """The CA's certificate stored before the order's own step stores it (imported by a person, or a
    second worker with the same answer): the order completes with that certificate, no IntegrityError."""
    simulator.cli("set-renewal-delay", "--seconds", "0")
    old = renewable()
    order, _ = request_renewal(old, alice)
    advance_order(order.pk)  # the CA has the order
    order.refresh_from_db()
    issuer = issuer_for(old)
    answer = issuer.order_status(old, order.ca_order_id)
    (imported,) = store_bundle(
        answer.bundle, source=Source.MITID, actor="test", event_kind=EventKind.IMPORTED, message="Imported."
    )

    renewal._complete(order, answer.bundle, issuer.name)
    renewal._complete(order, answer.bundle, issuer.name)  # a second worker with the same answer
    order.refresh_from_db()
    assert order.state == OrderState.ISSUED and order.new_certificate == imported.certificate
    assert Certificate.objects.count() == 2
    assert Certificate.objects.get(pk=old.pk).state == LifecycleState.SUPERSEDED


@pytest.mark.django_db(False)
def test_a_500_with_a_problem_body_is_transient_as_the_contract_says():
    import requests

    from mitid.client import MitIDClient

    def answer(status: int, body: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = status, body
        response.headers["Content-Type"] = "application/problem+json"
        return response

    client = MitIDClient("https://ca.invalid/test")
    crashed = client._problem(answer(500, b'{"code": "internal_error", "status": 500}'), None)
    assert crashed.transient and crashed.code == "unavailable"
    assert "unavailable right now" in crashed.sentence
    gateway = client._problem(answer(502, b"<html>Bad gateway</html>"), None)
    assert gateway.transient and gateway.code == "unavailable"
    busy = client._problem(answer(429, b"{}"), 7.0)
    assert busy.transient and busy.code == "rate_limited" and busy.retry_after == 7.0
    refused = client._problem(answer(409, b'{"code": "certificate_blocked"}'), None)
    assert not refused.transient and refused.code == "certificate_blocked"
    odd = client._problem(answer(418, b"teapot"), None)
    assert not odd.transient and odd.code == "unexpected_response"


@pytest.mark.django_db(False)
def test_the_next_step_is_never_after_the_last_useful_moment_before_expiry():
    now = timezone.now()
    certificate = Certificate(not_after=now + dt.timedelta(days=30))
    assert next_step_at(certificate, now, 60) == now + dt.timedelta(seconds=60)
    certificate.not_after = now + dt.timedelta(hours=1)
    # 5 minutes before expiry at the latest, whatever the backoff or Retry-After wants.
    assert next_step_at(certificate, now, 7200) == certificate.not_after - dt.timedelta(minutes=5)
    certificate.not_after = now + dt.timedelta(minutes=10)
    assert next_step_at(certificate, now, 7200) == certificate.not_after - dt.timedelta(minutes=1)
    certificate.not_after = now + dt.timedelta(seconds=1)
    assert next_step_at(certificate, now, 30) is None


def test_backoff_stops_before_expiry_and_says_the_ca_cannot_be_asked_again(
    renewable, simulator, settings, admin_user
):
    settings.TRUSTVIEW_ALERT_AFTER_FAILURES = 100
    simulator.cli("set-validity", "--minutes", "10")
    old = renewable()
    order, _ = request_renewal(old, "test")
    simulator.cli(
        "fault",
        "error",
        "--code",
        "unavailable",
        "--retry-after",
        "3600",
        "--count",
        "20",
        "--path",
        "/v1/renewals",
    )
    steps = []
    now = timezone.now()
    while order.is_open and len(steps) < 20:
        advance_order(order.pk, now=now)
        order.refresh_from_db()
        steps.append(order.next_attempt_at)
        now = order.next_attempt_at
    assert order.state == OrderState.FAILED and order.last_error_code == "expires_before_retry"
    assert all(at < old.not_after for at in steps[:-1])
    assert order.last_error.startswith("The certificate expires before the CA could be asked again")
    assert "MitID Erhverv is unavailable right now" in order.last_error
    assert Event.objects.filter(certificate=old, kind=EventKind.RENEWAL_FAILED).count() == 1
    assert [m for m in mail.outbox if "Renewal failed" in m.subject]


@pytest.mark.django_db(False)
def test_order_steps_have_their_own_queue_and_the_control_tasks_the_default_one():
    from trustview.celery import app

    def queue(task: str) -> str:
        return str(app.amqp.router.route({}, task)["queue"].name)

    assert queue("certificates.tasks.process_order") == "orders"
    for task in ("sweep", "send_expiry_alerts", "check_revocation", "send_monthly_status"):
        assert queue(f"certificates.tasks.{task}") == "celery"
