"""docker-compose.yml's simulator is reached as https://simulator:8443: `serve --tls-name simulator` makes
its TLS certificate valid for that name, under the CA the portal already trusts (MITID_CA_BUNDLE)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .support.processes import Simulator, fresh_state, running_simulator


def handshake(simulator: Simulator, host_name: str) -> None:
    """A TLS handshake as the portal's MitID client makes it: the simulator's CA, host name checked."""
    address = urlsplit(simulator.api)
    context = ssl.create_default_context(cafile=simulator.tls_ca)
    with (
        socket.create_connection((address.hostname, address.port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname=host_name),
    ):
        pass


def test_the_simulator_is_trusted_under_its_compose_service_name(seed_state, tmp_path):
    state = fresh_state(seed_state, tmp_path)
    with running_simulator(state) as simulator:
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(simulator, "simulator")
        ca_before = Path(simulator.tls_ca).read_bytes()

    for _ in range(2):  # at every start of the compose service; the second time changes nothing
        with running_simulator(state, "--tls-name", "simulator") as simulator:
            handshake(simulator, "simulator")
    with running_simulator(state) as simulator:
        handshake(simulator, "simulator")  # kept in the state
        handshake(simulator, "localhost")  # make run and the tests keep working
        assert Path(simulator.tls_ca).read_bytes() == ca_before  # the CA the portal trusts is unchanged
