"""Section 8's faults: injected problems, slowness and dropped connections on the HTTPS API only."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from ..support.processes import Simulator
from .conftest import problem

pytestmark = pytest.mark.usefixtures("clean_faults")

# Without a client certificate this call normally answers 401: cheap, and never changes anything.
PROBE = "/v1/renewals/" + str(uuid.UUID(int=1))


def probe(sim: Simulator, environment: str = "test") -> requests.Response:
    return sim.get(f"/{environment}{PROBE}")


def test_error_fault_answers_for_count_calls_with_retry_after_then_stops(sim: Simulator) -> None:
    added = sim.cli("fault", "error", "--code", "unavailable", "--retry-after", "3", "--count", "2")
    assert added["added"]["code"] == "unavailable" and added["added"]["remaining"] == 2
    for _ in range(2):
        response = probe(sim)
        problem(response, "unavailable", 503)
        assert response.headers["Retry-After"] == "3"
    problem(probe(sim), "client_certificate_required", 401)
    assert sim.cli("fault", "list") == {"faults": []}


def test_rate_limited_gets_a_default_retry_after(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "rate_limited")
    response = probe(sim, "production")
    problem(response, "rate_limited", 429)
    assert response.headers["Retry-After"] == "1"


def test_any_contract_code_can_be_injected_with_its_own_status(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "invalid_pin")
    sim.cli("fault", "error", "--code", "renewal_not_enabled")
    assert isinstance(problem(probe(sim), "invalid_pin", 422)["attempts_left"], int)
    problem(probe(sim), "renewal_not_enabled", 403)


def test_path_prefix_limits_the_fault(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "unavailable", "--path", "/v1/renewals")
    # Another path does not use it up ...
    problem(sim.post("/test/v1/certificates", {}, key=None), "idempotency_key_required", 400)
    # ... a path below the prefix does.
    problem(probe(sim), "unavailable", 503)
    problem(probe(sim), "client_certificate_required", 401)


def test_faults_are_used_in_the_order_they_were_added(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "rate_limited")
    sim.cli("fault", "error", "--code", "unavailable")
    listed = sim.cli("fault", "list")["faults"]
    assert [f["code"] for f in listed] == ["rate_limited", "unavailable"]
    problem(probe(sim), "rate_limited", 429)
    problem(probe(sim), "unavailable", 503)


def test_slow_fault_waits_then_answers_normally(sim: Simulator) -> None:
    sim.cli("fault", "slow", "--seconds", "1")
    started = time.monotonic()
    problem(probe(sim), "client_certificate_required", 401)
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    probe(sim)
    assert time.monotonic() - started < 1.0


def test_drop_fault_closes_the_connection_without_an_answer(sim: Simulator) -> None:
    sim.cli("fault", "drop")
    with pytest.raises(requests.ConnectionError):
        probe(sim)
    problem(probe(sim), "client_certificate_required", 401)
    assert "dropped (fault)" in sim.log()


def test_clear_removes_pending_faults(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "unavailable", "--count", "5")
    sim.cli("fault", "drop", "--count", "2")
    assert len(sim.cli("fault", "list")["faults"]) == 2
    assert sim.cli("fault", "clear") == {"cleared": 2}
    assert sim.cli("fault", "list") == {"faults": []}
    problem(probe(sim), "client_certificate_required", 401)


def test_faults_leave_health_and_ocsp_crl_alone(sim: Simulator) -> None:
    sim.cli("fault", "error", "--code", "unavailable")
    assert sim.get("/health").status_code == 200
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{sim.http}/test/crl/issuing.crl", timeout=30).status_code == 200
    assert sim.cli("fault", "list")["faults"][0]["remaining"] == 1


def test_fault_answers_are_not_remembered_for_the_idempotency_key(sim: Simulator) -> None:
    profile = sim.create_profile()
    body = {"reference_number": profile["reference_number"], "pin": profile["pin"]}
    key = str(uuid.uuid4())
    sim.cli("fault", "error", "--code", "unavailable")
    problem(sim.post("/test/v1/certificates", body, key=key), "unavailable", 503)
    assert sim.post("/test/v1/certificates", body, key=key).status_code == 201
