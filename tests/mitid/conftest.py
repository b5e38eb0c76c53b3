"""MitID tests: the portal pointed at the real simulator (the `simulator` fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from ..simulator_process import Simulator


@pytest.fixture
def mitid_settings(settings, simulator: Simulator):  # type: ignore[no-untyped-def]
    """Point the portal at the test simulator; faults left by a test are cleared afterwards."""
    settings.MITID_TEST_URL = simulator.base_url("test")
    settings.MITID_PRODUCTION_URL = simulator.base_url("production")
    settings.MITID_CA_BUNDLE = simulator.tls_ca
    yield settings
    simulator.cli("fault", "clear")
    simulator.cli("set-validity", "--default")
