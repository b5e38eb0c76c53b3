"""Shared fixtures: the real OCES3 certificates, named users, and a logged-in administrator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from .simulator_process import Simulator, running_simulator

OCES3_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "oces3"

SYSTEM_2023 = "test-system-2023.pem"
SYSTEM_2026 = "test-system-2026-renewed.pem"
ROOT_CA = "test-root-ca.pem"
ISSUING_CA = "test-issuing-ca-1.pem"
ALL_FIXTURES = [ROOT_CA, ISSUING_CA, SYSTEM_2023, SYSTEM_2026]

SKAT_CVR = "19552101"
SKAT_UUID = "5e50b9bb-22fd-483d-baf7-fd077ed975f5"


def oces3(name: str) -> bytes:
    """The bytes of one of the real public OCES3 certificates in ../shared/fixtures/oces3."""
    path = OCES3_DIR / name
    if not path.exists():
        pytest.fail(f"Missing real OCES3 fixture {path}: the tests need ../shared beside the checkout.")
    return path.read_bytes()


@pytest.fixture
def alice(django_user_model):  # type: ignore[no-untyped-def]
    """An administrator (staff, not superuser) who uses the portal."""
    return django_user_model.objects.create_user(
        "alice", "alice@example.dk", "alice-password-1", is_staff=True
    )


@pytest.fixture
def alice_client(alice) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One real MitID Erhverv simulator process for the whole run, with its own state directory."""
    with running_simulator(tmp_path_factory.mktemp("simulator-state")) as running:
        yield running
