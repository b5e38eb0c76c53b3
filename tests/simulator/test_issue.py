"""Section 3 of the contract: issuing, the certificate's shape, PIN rules and Idempotency-Key rules."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from mitid.simulator.state import DEFAULT_PIN_COST, hash_pin, pin_matches

from ..support.openssl import openssl
from ..support.processes import Issued, Simulator, unpack
from .conftest import problem

FIXTURE = (
    Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "oces3" / "test-system-2026-renewed.pem"
)
QC_LEGAL_PERSON = bytes.fromhex(
    "302d302b06082b06010505070b02301f060704008bec4901023014861268747470733a2f2f7569642e676f762e646b"
)
QC_NATURAL_PERSON = QC_LEGAL_PERSON.replace(bytes.fromhex("04008bec490102"), bytes.fromhex("04008bec490101"))
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def issue_body(profile: dict[str, str], pin: str | None = None) -> dict[str, str]:
    return {"reference_number": profile["reference_number"], "pin": pin or profile["pin"]}


def policies(certificate: x509.Certificate) -> list[str]:
    value = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return [policy.policy_identifier.dotted_string for policy in value]


def test_health_needs_no_client_certificate(sim: Simulator) -> None:
    response = sim.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_issue_answers_201_with_the_certificate_and_an_openable_pkcs12(
    sim: Simulator, tmp_path: Path
) -> None:
    profile = sim.create_profile(cvr="12345678", name="Lønsystem", organisation_name="Eksempel A/S")
    response = sim.post("/test/v1/certificates", issue_body(profile))
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"certificate", "pkcs12", "pkcs12_password"}
    facts = answer["certificate"]
    assert set(facts) == {"serial_number", "uuid", "subject", "not_before", "not_after"}
    assert re.fullmatch(r"[0-9A-F]+", facts["serial_number"])
    assert str(uuid.UUID(facts["uuid"])) == facts["uuid"]
    assert facts["subject"] == (
        f"CN=Lønsystem, serialNumber=UI:DK-O:G:{facts['uuid']}, O=Eksempel A/S, "
        "organizationIdentifier=NTRDK-12345678, C=DK"
    )
    assert TIME.match(facts["not_before"]) and TIME.match(facts["not_after"])

    issued = unpack(answer, tmp_path)
    assert f"{issued.certificate.serial_number:X}" == facts["serial_number"]
    # The chain in the PKCS#12 is issuing CA, then root.
    assert [c.subject.rfc4514_string() for c in issued.chain] == [
        "C=DK,O=Den Danske Stat,OU=Test - cti,CN=Den Danske Stat OCES udstedende-CA 1",
        "C=DK,O=Den Danske Stat,OU=Test - cti,CN=Den Danske Stat OCES rod-CA",
    ]
    opened = openssl("pkcs12", "-in", str(issued.p12_file), "-passin", f"pass:{issued.password}", "-nokeys")
    assert opened.returncode == 0, opened.stderr
    assert b"BEGIN CERTIFICATE" in opened.stdout
    verified = openssl(
        "verify",
        "-CAfile",
        sim.ca_file("test", "root"),
        "-untrusted",
        sim.ca_file("test", "issuing"),
        str(issued.cert_file),
    )
    assert verified.returncode == 0 and b": OK" in verified.stdout, verified.stdout + verified.stderr


def test_certificate_is_shaped_like_the_real_oces3_certificates(sim: Simulator) -> None:
    issued = sim.issue(cvr="19552101", name="B2B gateway", organisation_name="Skatteforvaltningen")
    certificate = issued.certificate
    real = x509.load_pem_x509_certificate(FIXTURE.read_bytes())

    assert [a.oid for a in certificate.subject] == [a.oid for a in real.subject]
    assert [e.oid for e in certificate.extensions] == [e.oid for e in real.extensions]
    assert certificate.issuer == real.issuer  # same test issuing CA name
    assert certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == (
        f"UI:DK-O:G:{issued.answer['certificate']['uuid']}"
    )
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == (
        "NTRDK-19552101"
    )

    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 3072
    assert certificate.serial_number.bit_length() == 159
    pss = certificate.signature_algorithm_parameters
    assert isinstance(pss, padding.PSS)
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    text = openssl("x509", "-in", str(issued.cert_file), "-noout", "-text").stdout.decode()
    assert "rsassaPss" in text and "mgf1 with sha256" in text and "Salt Length: 0x20" in text

    assert policies(certificate) == ["0.4.0.2042.1.1", "1.2.208.169.1.1.1.3.7.1"]
    qc = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"))
    assert isinstance(qc.value, x509.UnrecognizedExtension)
    assert qc.value.value == QC_LEGAL_PERSON
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca

    issuing = issued.chain[0]
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [
        f"{sim.http}/test/ca/issuing.cer",
        f"{sim.http}/test/ocsp",
    ]
    crl = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crl[0].full_name == [x509.UniformResourceIdentifier(f"{sim.http}/test/crl/issuing.crl")]

    # Three years, like the real ones: 1095 days less a second.
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == timedelta(
        days=1095, seconds=-1
    )
    assert abs(certificate.not_valid_before_utc - datetime.now(UTC)) < timedelta(minutes=1)


def test_employee_certificate_has_e_serial_employee_policy_and_natural_person_semantics(
    sim: Simulator,
) -> None:
    issued = sim.issue(certificate_type="employee", name="Jens Hansen")
    certificate = issued.certificate
    serial_number = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial_number == f"UI:DK-E:G:{issued.answer['certificate']['uuid']}"
    assert policies(certificate) == ["0.4.0.2042.1.1", "1.2.208.169.1.1.1.2.7.1"]
    qc = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")).value
    assert isinstance(qc, x509.UnrecognizedExtension) and qc.value == QC_NATURAL_PERSON


def test_production_issues_from_the_production_ca_and_knows_no_test_references(sim: Simulator) -> None:
    issued = sim.issue(environment="production")
    assert issued.certificate.issuer.rfc4514_string() == (
        "C=DK,O=Den Danske Stat,CN=Den Danske Stat OCES udstedende-CA 1"
    )
    verified = openssl(
        "verify",
        "-CAfile",
        sim.ca_file("production", "root"),
        "-untrusted",
        sim.ca_file("production", "issuing"),
        str(issued.cert_file),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    test_profile = sim.create_profile(environment="test")
    problem(sim.post("/production/v1/certificates", issue_body(test_profile)), "unknown_reference", 404)


def test_reference_and_pin_are_compared_without_spaces_and_dashes_in_any_case(sim: Simulator) -> None:
    profile = sim.create_profile()
    body = {"reference_number": profile["reference_number"].replace(" ", ""), "pin": profile["pin"].lower()}
    assert sim.post("/test/v1/certificates", body).status_code == 201
    assert re.fullmatch(r"\d{4} \d{4} \d{4}", profile["reference_number"])
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", profile["pin"])


def test_wrong_pins_count_down_then_lock_the_profile(sim: Simulator) -> None:
    profile = sim.create_profile()
    wrong = "AAAA-AAAA" if profile["pin"] != "AAAA-AAAA" else "BBBB-BBBB"
    for left in (4, 3, 2, 1):
        response = sim.post("/test/v1/certificates", issue_body(profile, wrong))
        document = problem(response, "invalid_pin", 422)
        assert document["attempts_left"] == left
        assert wrong not in response.text and profile["pin"] not in response.text
    problem(sim.post("/test/v1/certificates", issue_body(profile, wrong)), "pin_locked", 423)
    # Locked means locked: the right PIN does not help any more.
    problem(sim.post("/test/v1/certificates", issue_body(profile)), "pin_locked", 423)


def test_pins_match_whatever_cost_they_were_hashed_at(sim: Simulator) -> None:
    # The suite's simulators hash PINs at the lowest cost (fresh_state); this one goes back to the default
    # for one profile, then lowers it again: both PINs still issue, and a wrong PIN is still refused.
    sim.cli("set-pin-cost", "--cost", str(DEFAULT_PIN_COST))
    at_default = sim.create_profile()
    sim.cli("set-pin-cost", "--cost", "10")
    cheap = sim.create_profile()
    assert sim.cli("status")["settings"]["pin_cost"] == 10
    with contextlib.closing(sqlite3.connect(sim.state_dir / "simulator.sqlite3")) as connection:
        stored = dict(connection.execute("SELECT reference, pin_hash FROM profiles"))
    assert stored[at_default["reference_number"].replace(" ", "")][0] == DEFAULT_PIN_COST
    assert stored[cheap["reference_number"].replace(" ", "")][0] == 10
    wrong = "AAAA-AAAA" if at_default["pin"] != "AAAA-AAAA" else "BBBB-BBBB"
    problem(sim.post("/test/v1/certificates", issue_body(at_default, wrong)), "invalid_pin", 422)
    for profile in (at_default, cheap):
        assert sim.post("/test/v1/certificates", issue_body(profile)).status_code == 201
    # A digest stored before the cost was (32 bytes, the default cost) still matches.
    salt = b"s" * 16
    assert pin_matches("ABCD-EFGH", salt, hash_pin("ABCD-EFGH", salt)[1:])
    assert not pin_matches("ABCD-EFGA", salt, hash_pin("ABCD-EFGH", salt)[1:])
    # A cost scrypt cannot do in its default memory, or a damaged hash: no match, and no crash.
    assert not pin_matches("ABCD-EFGH", salt, bytes([20]) + hash_pin("ABCD-EFGH", salt)[1:])
    assert not pin_matches("ABCD-EFGH", salt, b"")


def test_unknown_reference(sim: Simulator) -> None:
    body = {"reference_number": "0000 0000 0001", "pin": "ABCD-EFGH"}
    problem(sim.post("/test/v1/certificates", body), "unknown_reference", 404)


def test_a_used_reference_cannot_issue_again(sim: Simulator) -> None:
    profile = sim.create_profile()
    assert sim.post("/test/v1/certificates", issue_body(profile)).status_code == 201
    problem(sim.post("/test/v1/certificates", issue_body(profile)), "reference_used", 409)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b'{"pin": "ABCD-EFGH"}', "application/json"),
        (b'{"reference_number": "1234 5678 9012"}', "application/json"),
        (b'{"reference_number": 123456789012, "pin": "ABCD-EFGH"}', "application/json"),
        (b'{"reference_number": "1234", "pin": "ABCD-EFGH"}', "application/json"),
        (b'{"reference_number": "1234 5678 9012", "pin": ""}', "application/json"),
        (b'{"reference_number": "1234 5678 9012", "pin": "ABCD-EFGH", "extra": 1}', "application/json"),
        (b'{"reference_number": "1234 5678 9012", "pin": "ABCD-EFGH"}', "text/plain"),
    ],
)
def test_malformed_requests_are_invalid_request(sim: Simulator, data: bytes, content_type: str) -> None:
    problem(sim.post("/test/v1/certificates", data=data, content_type=content_type), "invalid_request", 400)


def test_post_without_idempotency_key(sim: Simulator) -> None:
    profile = sim.create_profile()
    problem(sim.post("/test/v1/certificates", issue_body(profile), key=None), "idempotency_key_required", 400)
    # Nothing was used up: the profile still issues.
    assert sim.post("/test/v1/certificates", issue_body(profile)).status_code == 201


def test_same_key_same_request_returns_the_same_answer_and_makes_nothing_new(sim: Simulator) -> None:
    profile = sim.create_profile(cvr="87654321")
    key = str(uuid.uuid4())
    first = sim.post("/test/v1/certificates", issue_body(profile), key=key)
    count = sim.cli("status")["environments"]["test"]["certificates"]
    again = sim.post("/test/v1/certificates", issue_body(profile), key=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # same certificate, same PKCS#12, same password
    assert sim.cli("status")["environments"]["test"]["certificates"] == count
    assert "replay" in sim.log()


def test_same_key_different_request_is_idempotency_key_reused(sim: Simulator) -> None:
    first_profile, second_profile = sim.create_profile(), sim.create_profile()
    key = str(uuid.uuid4())
    assert sim.post("/test/v1/certificates", issue_body(first_profile), key=key).status_code == 201
    reused = sim.post("/test/v1/certificates", issue_body(second_profile), key=key)
    problem(reused, "idempotency_key_reused", 422)
    # The key is per environment: production has never seen it.
    problem(
        sim.post("/production/v1/certificates", issue_body(second_profile), key=key), "unknown_reference", 404
    )


def test_errors_are_not_remembered_so_the_key_may_be_retried(sim: Simulator) -> None:
    profile = sim.create_profile()
    wrong = "AAAA-AAAA" if profile["pin"] != "AAAA-AAAA" else "BBBB-BBBB"
    key = str(uuid.uuid4())
    problem(sim.post("/test/v1/certificates", issue_body(profile, wrong), key=key), "invalid_pin", 422)
    assert sim.post("/test/v1/certificates", issue_body(profile), key=key).status_code == 201


def test_unknown_paths_and_methods_are_problems_too(sim: Simulator) -> None:
    problem(sim.get("/test/v1/nothing"), "not_found", 404)
    problem(sim.get("/staging/v1/certificates"), "not_found", 404)
    problem(sim.get("/test/v1/certificates"), "method_not_allowed", 405)


def test_log_has_one_line_per_call_and_no_pins_or_passwords(sim: Simulator) -> None:
    profile = sim.create_profile()
    wrong = "AAAA-AAAA" if profile["pin"] != "AAAA-AAAA" else "BBBB-BBBB"
    sim.post("/test/v1/certificates", issue_body(profile, wrong))
    answer = sim.post("/test/v1/certificates", issue_body(profile)).json()
    log = sim.log()
    assert "POST /test/v1/certificates 201" in log
    assert "POST /test/v1/certificates 422 invalid_pin" in log
    assert profile["pin"] not in log and profile["pin"].replace("-", "") not in log
    assert answer["pkcs12_password"] not in log


def test_issuing_takes_each_pooled_key_once_then_makes_new_ones(sim: Simulator) -> None:
    from cryptography.hazmat.primitives import serialization

    pool = sim.state_dir / "key-pool"

    def public(der: bytes) -> bytes:
        key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def issued_public(issued: Issued) -> bytes:
        return issued.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    before = {path.name: path.read_bytes() for path in pool.glob("*.der")}
    assert before, "the tests' simulators start with a pool of leaf keys"
    first = sim.issue(cvr="60606060", name="Fra puljen")
    (taken,) = set(before) - {path.name for path in pool.glob("*.der")}  # exactly one key left the pool
    assert issued_public(first) == public(before[taken])
    # Each key once: with the pool empty, keys are made as they are needed, still RSA-3072 and new.
    for path in pool.glob("*.der"):
        path.unlink()
    second = sim.issue(cvr="60606060", name="Ny nøgle")
    assert second.key.key_size == 3072
    assert issued_public(second) not in {public(der) for der in before.values()}
    assert sim.cli("make-key-pool", "--count", "1") == {"pooled_keys": 1}
    third = sim.issue(cvr="60606060", name="Fra puljen igen")
    assert not list(pool.glob("*.der")) and issued_public(third) != issued_public(second)
