"""Sections 4 and 5: renewal orders over mutual TLS, and blocking; every error those calls can give."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from ..support.openssl import openssl
from ..support.processes import Issued, Simulator, unpack
from .conftest import problem

RENEWAL_DELAY = 1.0


@pytest.fixture(scope="module", autouse=True)
def short_lived(sim: Simulator) -> Issued:
    """Module set-up: orders are ready after RENEWAL_DELAY, and one certificate is valid for 3 seconds.

    The short-lived certificate is made before the first test, so by the last test it has long expired
    and the expiry test need not sleep.
    """
    sim.cli("set-renewal-delay", "--seconds", str(RENEWAL_DELAY))
    sim.cli("set-validity", "--minutes", "0.05")
    try:
        return renewable(sim, cvr="33445566")
    finally:
        sim.cli("set-validity", "--default")


def renewable(sim: Simulator, cvr: str = "22334455", **profile: str) -> Issued:
    sim.cli("enable-renewal", "--cvr", cvr)
    return sim.issue(cvr=cvr, **profile)


def wait_until_ready() -> None:
    """Orders are ready RENEWAL_DELAY seconds after they were made."""
    time.sleep(RENEWAL_DELAY + 0.2)


def test_renewal_needs_a_client_certificate(sim: Simulator) -> None:
    problem(sim.post("/test/v1/renewals", {}), "client_certificate_required", 401)
    problem(sim.get(f"/test/v1/renewals/{uuid.uuid4()}"), "client_certificate_required", 401)
    problem(sim.post("/test/v1/certificates/block", {}), "client_certificate_required", 401)


def test_certificate_of_the_other_environment_is_unknown(sim: Simulator) -> None:
    production = renewable(sim, environment="production")
    problem(sim.post("/test/v1/renewals", {}, cert=production.tls), "unknown_certificate", 403)
    problem(sim.post("/test/v1/certificates/block", {}, cert=production.tls), "unknown_certificate", 403)
    test = renewable(sim)
    problem(sim.post("/production/v1/renewals", {}, cert=test.tls), "unknown_certificate", 403)


def test_renewal_needs_the_organisation_enabled(sim: Simulator) -> None:
    issued = sim.issue(cvr="99887766")
    problem(sim.post("/test/v1/renewals", {}, cert=issued.tls), "renewal_not_enabled", 403)
    sim.cli("enable-renewal", "--cvr", "99887766")
    assert sim.post("/test/v1/renewals", {}, cert=issued.tls).status_code == 202
    sim.cli("disable-renewal", "--cvr", "99887766")
    problem(sim.post("/test/v1/renewals", {}, cert=issued.tls), "renewal_not_enabled", 403)


def test_renewal_body_must_be_an_empty_object(sim: Simulator) -> None:
    issued = renewable(sim)
    problem(sim.post("/test/v1/renewals", {"x": 1}, cert=issued.tls), "invalid_request", 400)
    problem(sim.post("/test/v1/renewals", data=b"nope", cert=issued.tls), "invalid_request", 400)


def test_renewal_order_goes_from_in_progress_to_issued_with_the_same_subject(sim: Simulator) -> None:
    old = renewable(sim, name="Faktura", organisation_name="Eksempel A/S")
    accepted = sim.post("/test/v1/renewals", {}, cert=old.tls)
    assert accepted.status_code == 202, accepted.text
    order = accepted.json()
    assert order == {"order_id": order["order_id"], "status": "in_progress"}
    assert accepted.headers["Location"] == f"{sim.api}/test/v1/renewals/{order['order_id']}"
    assert int(accepted.headers["Retry-After"]) >= 1

    # Asked again (another key) while in progress: the same order, 200.
    again = sim.post("/test/v1/renewals", {}, cert=old.tls)
    assert again.status_code == 200 and again.json() == order
    assert again.headers["Location"] == accepted.headers["Location"]

    pending = sim.get(accepted.headers["Location"], cert=old.tls)
    assert pending.status_code == 200
    assert pending.json() == order
    assert int(pending.headers["Retry-After"]) >= 1

    wait_until_ready()
    collected = sim.get(accepted.headers["Location"], cert=old.tls)
    assert collected.status_code == 200, collected.text
    answer = collected.json()
    assert answer["order_id"] == order["order_id"] and answer["status"] == "issued"
    assert "Retry-After" not in collected.headers
    new = unpack(answer, old.cert_file.parent)
    assert new.answer["certificate"]["uuid"] == old.answer["certificate"]["uuid"]
    assert new.answer["certificate"]["subject"] == old.answer["certificate"]["subject"]
    assert new.certificate.subject == old.certificate.subject
    assert new.serial != old.serial
    assert new.certificate.public_key() != old.certificate.public_key()
    assert new.certificate.not_valid_before_utc >= old.certificate.not_valid_before_utc
    verified = openssl(
        "verify",
        "-CAfile",
        sim.ca_file("test", "root"),
        "-untrusted",
        sim.ca_file("test", "issuing"),
        str(new.cert_file),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Collected again: the same answer. The old certificate stays usable; the new one is known too.
    assert sim.get(accepted.headers["Location"], cert=old.tls).content == collected.content
    assert sim.post("/test/v1/renewals", {}, cert=new.tls).status_code == 202


def test_the_same_idempotency_key_replays_the_202(sim: Simulator) -> None:
    issued = renewable(sim)
    key = str(uuid.uuid4())
    first = sim.post("/test/v1/renewals", {}, cert=issued.tls, key=key)
    again = sim.post("/test/v1/renewals", {}, cert=issued.tls, key=key)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["Location"] == first.headers["Location"]
    # The same key with another certificate is a different request.
    other = renewable(sim)
    problem(sim.post("/test/v1/renewals", {}, cert=other.tls, key=key), "idempotency_key_reused", 422)


def test_concurrent_collection_makes_exactly_one_certificate(sim: Simulator) -> None:
    old = renewable(sim)
    location = sim.post("/test/v1/renewals", {}, cert=old.tls).headers["Location"]
    wait_until_ready()
    before = sim.cli("status")["environments"]["test"]["certificates"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: sim.get(location, cert=old.tls), range(4)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["certificate"]["serial_number"] for a in answers}) == 1
    assert len({a.content for a in answers}) == 1
    assert sim.cli("status")["environments"]["test"]["certificates"] == before + 1


def test_order_of_another_certificate_is_not_found(sim: Simulator) -> None:
    mine, theirs = renewable(sim), renewable(sim)
    location = sim.post("/test/v1/renewals", {}, cert=theirs.tls).headers["Location"]
    problem(sim.get(location, cert=mine.tls), "order_not_found", 404)
    problem(sim.get(f"/test/v1/renewals/{uuid.uuid4()}", cert=mine.tls), "order_not_found", 404)
    problem(sim.get(location.replace("/test/", "/production/"), cert=theirs.tls), "unknown_certificate", 403)


def test_blocked_certificate_cannot_be_renewed_and_blocking_again_changes_nothing(sim: Simulator) -> None:
    issued = renewable(sim)
    blocked = sim.post("/test/v1/certificates/block", {"reason": "keyCompromise"}, cert=issued.tls)
    assert blocked.status_code == 200, blocked.text
    answer = blocked.json()
    assert answer == {"serial_number": issued.serial, "status": "blocked", "blocked_at": answer["blocked_at"]}
    problem(sim.post("/test/v1/renewals", {}, cert=issued.tls), "certificate_blocked", 409)
    again = sim.post("/test/v1/certificates/block", {}, cert=issued.tls)
    assert again.status_code == 200 and again.json() == answer


def test_block_reason_must_be_one_of_the_contract(sim: Simulator) -> None:
    issued = renewable(sim)
    problem(
        sim.post("/test/v1/certificates/block", {"reason": "bored"}, cert=issued.tls), "invalid_request", 400
    )


def test_expired_certificate_cannot_be_renewed(sim: Simulator, short_lived: Issued) -> None:
    """Last in the module, so the 3-second certificate made at its start has expired meanwhile."""
    certificate = short_lived.certificate
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc).total_seconds() == 3
    time.sleep(max(0.0, (certificate.not_valid_after_utc - datetime.now(UTC)).total_seconds() + 1.1))
    # The expired certificate still completes the TLS handshake; the API answers in words.
    problem(sim.post("/test/v1/renewals", {}, cert=short_lived.tls), "certificate_expired", 409)
    # Settings went back to three years for what is issued after it.
    assert sim.cli("status")["settings"]["validity"] == "3 years"
