"""`set-clock`: the operator moves the simulator's clock, so tests need not wait for certificates to age."""

from __future__ import annotations

from datetime import UTC, datetime

from ..support.processes import Simulator
from .conftest import problem


def test_what_is_issued_is_dated_by_the_moved_clock(sim: Simulator) -> None:
    moved = sim.cli("set-clock", "--offset=-3600")
    assert moved["clock_offset_seconds"] == -3600
    assert sim.cli("status")["settings"]["clock_offset_seconds"] == -3600
    try:
        issued = sim.issue()
    finally:
        back = sim.cli("set-clock", "--offset", "0")
    assert back["clock_offset_seconds"] == 0
    assert abs((datetime.now(UTC) - datetime.fromisoformat(back["now"])).total_seconds()) < 5
    ago = (datetime.now(UTC) - issued.certificate.not_valid_before_utc).total_seconds()
    assert 3595 <= ago <= 3700
    assert (
        issued.answer["certificate"]["not_before"]
        == f"{issued.certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
    )


def test_a_certificate_issued_in_the_past_can_have_expired(sim: Simulator) -> None:
    sim.cli("enable-renewal", "--cvr", "77665544")
    sim.cli("set-validity", "--minutes", "1")
    try:
        with sim.clock(-120):
            issued = sim.issue(cvr="77665544")
    finally:
        sim.cli("set-validity", "--default")
    problem(sim.post("/test/v1/renewals", {}, cert=issued.tls), "certificate_expired", 409)
