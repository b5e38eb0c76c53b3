"""The simulator as its own process, spoken to over real HTTPS with mutual TLS.

RSA key generation is the slow part, so the CA and TLS material is made once per run (``seed_state``)
and copied into each module's own state directory; each module then runs its own server process.
These tests need no database.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60


def cli_process(
    state_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs an operator command; the caller looks at status, stdout and stderr."""
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
    result = cli_process(state_dir, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], capture_output=True, input=data, timeout=60)


@dataclass
class Issued:
    """A certificate the simulator issued, with its key written to files for requests' ``cert=``."""

    answer: dict[str, Any]
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]
    cert_file: Path
    key_file: Path
    p12_file: Path

    @property
    def serial(self) -> str:
        return str(self.answer["certificate"]["serial_number"])

    @property
    def password(self) -> str:
        return str(self.answer["pkcs12_password"])

    @property
    def tls(self) -> tuple[str, str]:
        return str(self.cert_file), str(self.key_file)


def unpack(answer: dict[str, Any], directory: Path) -> Issued:
    """Opens the PKCS#12 of an issue or renewal answer and writes PEM files beside it."""
    data = base64.b64decode(answer["pkcs12"])
    key, certificate, chain = pkcs12.load_key_and_certificates(data, answer["pkcs12_password"].encode())
    assert isinstance(key, rsa.RSAPrivateKey) and certificate is not None
    serial = answer["certificate"]["serial_number"]
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file, p12_file = (directory / f"{serial}.{ext}" for ext in ("pem", "key", "p12"))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    p12_file.write_bytes(data)
    return Issued(answer, certificate, key, list(chain), cert_file, key_file, p12_file)


class Simulator:
    """One ``python -m mitid.simulator serve`` process on free ports, and helpers to talk to it."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_file = state_dir.parent / f"{state_dir.name}.log"
        self.files = state_dir.parent / f"{state_dir.name}-files"
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}

    def start(self) -> None:
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
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
                    str(self.state_dir),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_TIMEOUT_SECONDS):
                self.process.kill()
                pytest.fail(f"The simulator did not start: {self.log_file.read_text()}")
        line = self.process.stdout.readline()
        if not line:
            pytest.fail(f"The simulator exited: {self.log_file.read_text()}")
        self.ready = json.loads(line)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None
        return code

    @property
    def api(self) -> str:
        return str(self.ready["api"])

    @property
    def http(self) -> str:
        return str(self.ready["http"])

    @property
    def tls_ca(self) -> str:
        return str(self.ready["tls_ca"])

    def ca_file(self, environment: str, which: str) -> str:
        return str(self.state_dir / "ca" / environment / f"{which}.pem")

    def log(self) -> str:
        return self.log_file.read_text()

    def cli(self, *args: str) -> dict[str, Any]:
        return cli(self.state_dir, *args)

    def session(self) -> requests.Session:
        """Trusts the simulator's TLS CA; no trust_env, so REQUESTS_CA_BUNDLE cannot override that."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.tls_ca
        return session

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "new",
        cert: tuple[str, str] | None = None,
        data: bytes | None = None,
        content_type: str = "application/json",
    ) -> requests.Response:
        """POST to the API; ``key="new"`` sends a fresh Idempotency-Key, None sends none."""
        headers = {"Content-Type": content_type}
        if key is not None:
            headers["Idempotency-Key"] = str(uuid.uuid4()) if key == "new" else key
        payload = data if data is not None else json.dumps(body if body is not None else {}).encode()
        with self.session() as session:
            return session.post(self.api + path, data=payload, headers=headers, cert=cert, timeout=30)

    def get(self, path_or_url: str, *, cert: tuple[str, str] | None = None) -> requests.Response:
        url = path_or_url if path_or_url.startswith("https://") else self.api + path_or_url
        with self.session() as session:
            return session.get(url, cert=cert, timeout=30)

    def create_profile(
        self,
        *,
        cvr: str = "12345678",
        name: str = "Lønsystem",
        organisation_name: str = "Eksempel A/S",
        certificate_type: str = "system",
        environment: str = "test",
    ) -> dict[str, Any]:
        return self.cli(
            "create-profile",
            "--cvr",
            cvr,
            "--name",
            name,
            "--organisation-name",
            organisation_name,
            "--type",
            certificate_type,
            "--environment",
            environment,
        )

    def issue(self, environment: str = "test", **profile: str) -> Issued:
        """A profile made by the operator, issued through the API."""
        made = self.create_profile(environment=environment, **profile)
        response = self.post(
            f"/{environment}/v1/certificates",
            {"reference_number": made["reference_number"], "pin": made["pin"]},
        )
        assert response.status_code == 201, response.text
        return unpack(response.json(), self.files)


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


@pytest.fixture(scope="session")
def seed_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CA and TLS material made once (by an operator command, as on first use) for every module's copy."""
    seed = tmp_path_factory.mktemp("simulator-seed")
    cli(seed, "status")
    return seed


def fresh_state(seed: Path, directory: Path) -> Path:
    """A new state directory sharing the seed's keys but nothing else."""
    state = directory / "state"
    state.mkdir(parents=True)
    for part in ("ca", "tls"):
        shutil.copytree(seed / part, state / part)
    return state


@pytest.fixture(scope="module")
def sim(seed_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One running simulator for the module, with state of its own."""
    simulator = Simulator(fresh_state(seed_state, tmp_path_factory.mktemp("simulator")))
    simulator.start()
    try:
        yield simulator
    finally:
        if simulator.process is not None:
            simulator.stop()


@pytest.fixture
def clean_faults(sim: Simulator) -> Iterator[None]:
    """Leaves no pending fault to the next test."""
    yield
    sim.cli("fault", "clear")


def without_state_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MITID_SIMULATOR_STATE", None)
    return env
