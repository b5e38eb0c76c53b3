"""OpenSSL's command line, the independent judge of what the portal and the simulator make."""

from __future__ import annotations

import subprocess

TIMEOUT_SECONDS = 60


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Runs `openssl ARGS...`; the caller looks at the status and the output (bytes)."""
    return subprocess.run(["openssl", *args], capture_output=True, input=data, timeout=TIMEOUT_SECONDS)


def openssl_text(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `openssl ARGS...`; the caller looks at the status and the output (text)."""
    result = openssl(*args, data=data)
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def openssl_output(*args: str, data: bytes | None = None) -> str:
    """The output of `openssl ARGS...`, which must succeed."""
    result = openssl(*args, data=data)
    if result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def der_to_pem(der: bytes) -> bytes:
    """A DER certificate as PEM, converted by OpenSSL rather than by the code under test."""
    return openssl_output("x509", "-inform", "DER", data=der).encode()
