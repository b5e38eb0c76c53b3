"""Make the MitID Erhverv simulator's TLS certificate valid for more host names (docker-compose.yml).

The simulator's server certificate names only the loopback (localhost, 127.0.0.1, ::1), which is all
`make run` and the tests need. In the compose stack the portal's containers reach it as
https://simulator:8443, so before `serve` this re-issues the server certificate with the same key and
the simulator's own TLS CA (the MITID_CA_BUNDLE the portal trusts, tls/ca.pem) to name these hosts too.
Running it again changes nothing.

usage: python scripts/simulator_tls_names.py [--state-dir DIR] NAME...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for mitid.simulator

from mitid.simulator.pki import ensure_material
from mitid.simulator.state import resolve_state_dir, tls_dir


def general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def add_names(state_dir: Path, names: list[str]) -> bool:
    """Re-issue tls/server.pem to also cover NAMES; returns whether anything changed."""
    ensure_material(state_dir)
    directory = tls_dir(state_dir)
    server = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    present = list(server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    wanted = present + [name for name in map(general_name, names) if name not in present]
    if wanted == present:
        return False
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(server.subject)
        .issuer_name(ca.subject)
        .public_key(server.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(server.not_valid_before_utc)
        .not_valid_after(server.not_valid_after_utc)
    )
    for extension in server.extensions:  # the same extensions, with the longer list of names
        is_names = extension.oid == x509.SubjectAlternativeName.oid
        value = x509.SubjectAlternativeName(wanted) if is_names else extension.value
        builder = builder.add_extension(value, critical=extension.critical)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    # Written beside and renamed, so a simulator starting at the same moment never reads half a file.
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".server.pem.")
    with os.fdopen(descriptor, "wb") as file:
        file.write(certificate.public_bytes(serialization.Encoding.PEM))
    os.chmod(temporary, 0o644)
    os.replace(temporary, directory / "server.pem")
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="simulator_tls_names.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default=None, help="default: $MITID_SIMULATOR_STATE or var/simulator")
    parser.add_argument("names", nargs="+", metavar="NAME", help="a host name or IP address")
    args = parser.parse_args(argv)
    state_dir = resolve_state_dir(args.state_dir)
    changed = add_names(state_dir, args.names)
    verb = "now names" if changed else "already names"
    print(f"{tls_dir(state_dir) / 'server.pem'} {verb} {', '.join(args.names)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
