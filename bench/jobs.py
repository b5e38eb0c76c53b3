"""The jobs' figures of `make bench`: the revocation check's rate against a responder 50 ms away, /metrics
and the CSV export (time and peak memory at N and at a tenth of N), and the worker memory of the jobs.

Each figure runs in a fresh process (`python -m bench.jobs JOB BOUND`), as a worker or a web process
would run it, so its peak RSS (VmHWM) is its own and not the benchmark's. BOUND, when not 0, limits the
certificates to those with an id up to it (the tenth of N to compare memory with).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from bench.pki import self_signed_ca, signed_leaf

RESPONDER_DELAY = 0.05  # seconds: a responder 50 ms away
REVOCATION_CERTIFICATES = 2000  # per source (OCSP, CRL)
DAY = 86400


def _memory() -> dict[str, float]:
    """This process's resident memory now and at its peak, in MB (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {name: int(fields[key].split()[0]) / 1024 for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))}


def child(job: str, bound: int) -> dict[str, Any]:
    """Run one job in this (fresh) process and return its time, output size and memory."""
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # e-mail to memory
    from certificates import alerts, export, metrics, renewal, revocation
    from certificates.models import Certificate

    certificates = Certificate.objects.filter(pk__lte=bound) if bound else Certificate.objects.all()
    before = _memory()
    start = time.perf_counter()
    size: int | None = None
    if job == "metrics":
        size = sum(len(chunk) for chunk in metrics.exposition(certificates))
    elif job == "csv":
        size = sum(len(line.encode()) for line in export.lines(certificates.order_by("not_after", "id")))
    elif job == "expiry alerts":
        size = alerts.send_expiry_alerts()
    elif job == "monthly status":
        alerts.send_monthly_status()
    elif job == "sweep":
        size = renewal.sweep().opened
    elif job == "revocation check":
        unchecked = Certificate.objects.filter(revocation_checked_at=None).count()
        revocation.check_all()
        size = unchecked - Certificate.objects.filter(revocation_checked_at=None).count()
    else:
        raise SystemExit(f"unknown job {job!r}")
    took = time.perf_counter() - start
    after = _memory()
    return {"seconds": took, "size": size, "rss_before_mb": before["rss"], "peak_rss_mb": after["peak"]}


def run_child(job: str, bound: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603 - this interpreter, this module, our arguments
        [sys.executable, "-m", "bench.jobs", job, str(bound)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench job {job!r} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def measure(total: int) -> dict[str, dict[str, Any]]:
    """Every figure of this module, printed as it is taken."""
    from certificates.models import Certificate

    figures: dict[str, dict[str, Any]] = {}
    tenth = total // 10
    bound = Certificate.objects.order_by("pk").values_list("pk", flat=True)[tenth - 1] if tenth else 0

    def show(name: str, figure: dict[str, Any]) -> None:
        figures[name] = figure
        size = figure.get("size")
        extra = f", {size / 2**20:.1f} MB out" if name.startswith(("/metrics", "CSV")) and size else ""
        print(
            f"  {name:<42} {figure['seconds']:8.2f} s  peak RSS {figure['peak_rss_mb']:.0f} MB "
            f"(at start {figure['rss_before_mb']:.0f} MB){extra}",
            flush=True,
        )

    print("Jobs (each in a fresh process; peak RSS of that process):", flush=True)
    for name, job in (("/metrics", "metrics"), ("CSV export", "csv")):
        show(f"{name}, {tenth:,} certificates", run_child(job, bound))
        show(f"{name}, {total:,} certificates", run_child(job))
    for job in ("expiry alerts", "monthly status", "sweep"):
        show(f"worker: {job}", run_child(job))
    figures.update(revocation_rates())
    return figures


def revocation_rates() -> dict[str, dict[str, Any]]:
    """Certificates checked per second against a local responder answering after 50 ms: first by OCSP
    (one request each, TRUSTVIEW_REVOCATION_CONCURRENCY at once), then by one CRL for all."""
    from django.conf import settings

    from certificates.choices import TrustSource
    from certificates.models import TrustedCA
    from certificates.services import import_certificate_file
    from certificates.trust import fingerprint, trusted_ca_fields

    key = ec.generate_private_key(ec.SECP256R1())
    ca = self_signed_ca(key, "trustview bench revocation CA")
    TrustedCA.objects.create(fingerprint_sha256=fingerprint(ca), **trusted_ca_fields(ca, TrustSource.ADDED))
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ca-") as folder:
        cert_path, key_path = Path(folder) / "ca.pem", Path(folder) / "ca.key"
        cert_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        responder = subprocess.Popen(  # noqa: S603 - this interpreter, our module
            [sys.executable, "-m", "bench.responder", str(cert_path), str(key_path), str(RESPONDER_DELAY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert responder.stdout is not None
            base = f"http://127.0.0.1:{responder.stdout.readline().strip()}"
            env = {
                "TRUSTVIEW_OCSP_ALLOWED_HOSTS": "127.0.0.1",
                "TRUSTVIEW_REVOCATION_BATCH": str(10 * REVOCATION_CERTIFICATES),
                "TRUSTVIEW_REVOCATION_RUN_SECONDS": "3600",
            }
            for source in ("OCSP", "CRL"):
                for start in range(0, REVOCATION_CERTIFICATES, 1000):
                    bundle = _leaves(ca, key, 1000, source, base, f"{source} {start}")
                    import_certificate_file(bundle, actor="bench", filename="bench-revocation.pem")
                figure = run_child("revocation check", env=env)
                assert figure["size"] == REVOCATION_CERTIFICATES, figure
                rate = figure["size"] / figure["seconds"]
                per_run = min(
                    rate * settings.TRUSTVIEW_REVOCATION_RUN_SECONDS, settings.TRUSTVIEW_REVOCATION_BATCH
                )
                runs_a_day = DAY / settings.TRUSTVIEW_REVOCATION_CHECK_SECONDS
                figure.update(
                    per_second=rate,
                    hours_for_a_million=1_000_000 / rate / 3600,
                    per_day_with_the_schedule=per_run * runs_a_day,
                    concurrency=settings.TRUSTVIEW_REVOCATION_CONCURRENCY,
                )
                name = f"revocation check by {source}, 50 ms away"
                figures[name] = figure
                print(
                    f"  {name:<42} {rate:8.0f} certificates/s: 1,000,000 in "
                    f"{figure['hours_for_a_million']:.1f} h of checking; the schedule checks up to "
                    f"{figure['per_day_with_the_schedule']:,.0f} a day; "
                    f"peak RSS {figure['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        finally:
            assert responder.stdin is not None
            responder.stdin.close()
            responder.wait(timeout=30)
    return figures


def _leaves(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, count: int, source: str, base: str, tag: str
) -> bytes:
    """A PEM bundle of `count` leaves of `ca` naming the responder's OCSP address, or its CRL."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    if source == "OCSP":
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{base}/ocsp")
        )
        extension: x509.ExtensionType = x509.AuthorityInformationAccess([access])
    else:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{base}/crl")], None, None, None)
        extension = x509.CRLDistributionPoints([point])
    parts = []
    for index in range(count):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench revocation {tag} {index}")])
        leaf = signed_leaf(ca, ca_key, leaf_key, subject, 365, extension)
        parts.append(leaf.public_bytes(serialization.Encoding.PEM))
    return b"".join(parts)


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], int(sys.argv[2]))))
