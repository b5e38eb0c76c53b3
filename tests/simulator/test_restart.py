"""State lives in the state directory: a restarted simulator still knows its certificates and keys."""

from __future__ import annotations

import uuid

from ..support.openssl import openssl
from ..support.processes import Simulator, unpack


def test_state_survives_a_restart(sim: Simulator) -> None:
    sim.cli("enable-renewal", "--cvr", "55443322")
    sim.cli("set-renewal-delay", "--seconds", "30")
    profile = sim.create_profile(cvr="55443322")
    body = {"reference_number": profile["reference_number"], "pin": profile["pin"]}
    key = str(uuid.uuid4())
    issued_response = sim.post("/test/v1/certificates", body, key=key)
    assert issued_response.status_code == 201
    issued = unpack(issued_response.json(), sim.files)
    order = sim.post("/test/v1/renewals", {}, cert=issued.tls)
    assert order.status_code == 202

    old_pid = sim.ready["pid"]
    assert sim.stop() == 0  # SIGTERM is a clean stop
    assert "stopping" in sim.log()
    sim.start()
    assert sim.ready["pid"] != old_pid

    # Idempotency keys, certificates, orders and settings are all still there.
    again = sim.post("/test/v1/certificates", body, key=key)
    assert again.status_code == 201 and again.content == issued_response.content
    same_order = sim.post("/test/v1/renewals", {}, cert=issued.tls)
    assert same_order.status_code == 200 and same_order.json()["order_id"] == order.json()["order_id"]
    result = openssl(
        "ocsp",
        "-issuer",
        sim.ca_file("test", "issuing"),
        "-cert",
        str(issued.cert_file),
        "-url",
        f"{sim.http}/test/ocsp",
        "-CAfile",
        sim.ca_file("test", "root"),
    )
    assert f"{issued.cert_file}: good" in result.stdout.decode(), result.stdout + result.stderr
