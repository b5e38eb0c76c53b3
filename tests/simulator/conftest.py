"""The simulator as its own process, spoken to over real HTTPS with mutual TLS.

Each module runs its own server process on state of its own, with the CA and TLS keys made once per run
(``seed_state`` in tests/conftest.py). These tests need no database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..support.processes import REPO, Simulator, fresh_state, operate, running_simulator


def cli_process(
    state_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs an operator command as its own process; the caller looks at status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "mitid.simulator", *args, "--state-dir", str(state_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def cli(state_dir: Path, *args: str) -> dict[str, Any]:
    """Runs an operator command that must succeed; returns the JSON it printed."""
    return operate(state_dir, *args)


def problem(response: requests.Response, code: str, status: int) -> dict[str, Any]:
    """Asserts an RFC 9457 answer with the contract's code and status; returns its document."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["code"] == code
    assert document["status"] == status
    assert document["type"] == f"https://trustview.invalid/problems/{code}"
    assert document["title"] and document["detail"]
    return document


@pytest.fixture(scope="module")
def sim(seed_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One running simulator for the module, with state of its own."""
    with running_simulator(fresh_state(seed_state, tmp_path_factory.mktemp("simulator"))) as simulator:
        yield simulator


@pytest.fixture
def clean_faults(sim: Simulator) -> Iterator[None]:
    """Leaves no pending fault to the next test."""
    yield
    sim.cli("fault", "clear")


def without_state_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MITID_SIMULATOR_STATE", None)
    return env
