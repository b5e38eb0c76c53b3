"""Section 6: OCSP, the CRL and the CA certificates over plain HTTP, as a relying party fetches them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ..support.openssl import openssl
from ..support.processes import Issued, Simulator
from .conftest import cli_process, problem


def openssl_ocsp(sim: Simulator, issued: Issued, environment: str = "test") -> str:
    result = openssl(
        "ocsp",
        "-issuer",
        sim.ca_file(environment, "issuing"),
        "-cert",
        str(issued.cert_file),
        "-url",
        f"{sim.http}/{environment}/ocsp",
        "-CAfile",
        sim.ca_file(environment, "root"),
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    assert "Response verify OK" in output, output
    return output


def ocsp_request(issued: Issued, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, issuer, hashes.SHA256())
    return builder.build().public_bytes(serialization.Encoding.DER)


def http_get(url: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=30)


def http_post(url: str, data: bytes, content_type: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.post(url, data=data, headers={"Content-Type": content_type}, timeout=30)


def test_ocsp_says_good_then_revoked_after_block(sim: Simulator) -> None:
    issued = sim.issue()
    assert f"{issued.cert_file}: good" in openssl_ocsp(sim, issued)
    blocked = sim.post("/test/v1/certificates/block", {"reason": "keyCompromise"}, cert=issued.tls)
    assert blocked.status_code == 200
    output = openssl_ocsp(sim, issued)
    assert f"{issued.cert_file}: revoked" in output
    assert "Reason: keyCompromise" in output


def test_ocsp_get_form_and_unknown_and_unauthorized(sim: Simulator) -> None:
    issued = sim.issue()
    issuing = issued.chain[0]
    encoded = quote(base64.b64encode(ocsp_request(issued, issuing)).decode(), safe="")
    response = http_get(f"{sim.http}/test/ocsp/{encoded}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == issued.certificate.serial_number
    assert answer.next_update_utc is not None and answer.next_update_utc > datetime.now(UTC)

    # A serial this CA never issued, asked about by the right issuer: unknown.
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        answer.issuer_name_hash, answer.issuer_key_hash, 12345, hashes.SHA256()
    )
    reply = http_post(
        f"{sim.http}/test/ocsp",
        unknown.build().public_bytes(serialization.Encoding.DER),
        "application/ocsp-request",
    )
    assert ocsp.load_der_ocsp_response(reply.content).certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    # A test certificate asked of the production responder: not its business.
    reply = http_post(
        f"{sim.http}/production/ocsp", ocsp_request(issued, issuing), "application/ocsp-request"
    )
    assert ocsp.load_der_ocsp_response(reply.content).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    reply = http_post(f"{sim.http}/test/ocsp", b"garbage", "application/ocsp-request")
    status = ocsp.load_der_ocsp_response(reply.content).response_status
    assert status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_crl_lists_a_certificate_blocked_by_the_operator(sim: Simulator, tmp_path: Path) -> None:
    issued, kept = sim.issue(), sim.issue()
    blocked = sim.cli("block", "--serial", issued.serial.lower())
    assert blocked["serial_number"] == issued.serial and blocked["status"] == "blocked"
    assert blocked["environment"] == "test"

    response = http_get(f"{sim.http}/test/crl/issuing.crl")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pkix-crl"
    crl_file = tmp_path / "issuing.crl"
    crl_file.write_bytes(response.content)
    text = openssl("crl", "-inform", "DER", "-in", str(crl_file), "-noout", "-text").stdout.decode()
    assert f"Serial Number: {issued.serial}" in text
    assert kept.serial not in text
    assert "rsassaPss" in text
    checked = openssl(
        "crl", "-inform", "DER", "-in", str(crl_file), "-noout", "-CAfile", sim.ca_file("test", "issuing")
    )
    assert b"verify OK" in checked.stdout + checked.stderr

    crl = x509.load_der_x509_crl(response.content)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc <= timedelta(hours=24)
    # The API agrees: the operator's block is a block.
    problem(sim.post("/test/v1/renewals", {}, cert=issued.tls), "certificate_blocked", 409)
    # And the production CRL does not list it.
    production = x509.load_der_x509_crl(http_get(f"{sim.http}/production/crl/issuing.crl").content)
    assert production.get_revoked_certificate_by_serial_number(issued.certificate.serial_number) is None


def test_ca_certificates_are_served_as_der(sim: Simulator) -> None:
    for environment in ("test", "production"):
        for which in ("root", "issuing"):
            response = http_get(f"{sim.http}/{environment}/ca/{which}.cer")
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/pkix-cert"
            served = x509.load_der_x509_certificate(response.content)
            on_disk = x509.load_pem_x509_certificate(Path(sim.ca_file(environment, which)).read_bytes())
            assert served == on_disk
    assert http_get(f"{sim.http}/test/ca/other.cer").status_code == 404


def test_operator_block_of_an_unknown_serial_fails_in_one_sentence(sim: Simulator) -> None:
    result = cli_process(sim.state_dir, "block", "--serial", "ABCDEF")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
