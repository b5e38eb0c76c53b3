"""The real MitID Erhverv simulator, started as its own process (a session fixture in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .services import stop

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Simulator:
    api: str
    http: str
    tls_ca: str
    state_dir: Path

    def cli(self, *args: str) -> dict:  # type: ignore[type-arg]
        """Run an operator command against the running simulator's state; returns its JSON."""
        result = subprocess.run(
            [sys.executable, "-m", "mitid.simulator", *args, "--state-dir", str(self.state_dir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    def create_profile(
        self, cvr: str = "12345678", name: str = "Lønsystem", environment: str = "test", kind: str = "system"
    ) -> dict:  # type: ignore[type-arg]
        return self.cli(
            "create-profile",
            "--cvr",
            cvr,
            "--name",
            name,
            "--organisation-name",
            "Eksempel A/S",
            "--type",
            kind,
            "--environment",
            environment,
        )

    def base_url(self, environment: str = "test") -> str:
        return f"{self.api}/{environment}"

    def ca_certificate(self, environment: str, which: str) -> bytes:
        """The environment's root or issuing CA certificate as PEM (fetched as a relying party would)."""
        der = requests.get(f"{self.http}/{environment}/ca/{which}.cer", timeout=10).content
        return subprocess.run(
            ["openssl", "x509", "-inform", "DER"], input=der, capture_output=True, check=True
        ).stdout


@contextlib.contextmanager
def running_simulator(state_dir: Path, *serve_options: str) -> Iterator[Simulator]:
    log = (state_dir / "simulator.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mitid.simulator",
            "serve",
            "--port",
            "0",
            "--http-port",
            "0",
            "--state-dir",
            str(state_dir),
            *serve_options,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    ready = None
    for line in process.stdout:
        if line.lstrip().startswith("{"):
            ready = json.loads(line)
            break
    if ready is None:
        process.kill()
        pytest.fail(f"The simulator did not start: {(state_dir / 'simulator.log').read_text()}")
    try:
        yield Simulator(ready["api"], ready["http"], ready["tls_ca"], state_dir)
    finally:
        stop(process)
        log.close()
