"""The MitID client against the real simulator process over HTTPS: issue, renew, block, every error code."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from certificates.x509 import describe, key_owner, leaves, read_bundle
from mitid.client import ClientIdentity, MitIDClient
from mitid.errors import SENTENCES, MitIDError

from ..conftest import OCES3_DIR, ROOT_CA
from ..support.openssl import openssl_text


def client(simulator, environment: str = "test", ca_bundle: str | None = None) -> MitIDClient:  # type: ignore[no-untyped-def]
    return MitIDClient(
        simulator.base_url(environment), environment=environment, ca_bundle=ca_bundle or simulator.tls_ca
    )


def issue(simulator, environment: str = "test", cvr: str = "12345678", kind: str = "system"):  # type: ignore[no-untyped-def]
    profile = simulator.create_profile(cvr=cvr, environment=environment, certificate_type=kind)
    issued = client(simulator, environment).issue(
        profile["reference_number"], profile["pin"], idempotency_key=str(uuid.uuid4())
    )
    return profile, issued, read_bundle(issued.pkcs12, issued.password)


def identity(bundle) -> ClientIdentity:  # type: ignore[no-untyped-def]
    from certificates.x509 import chain_for, to_pem

    leaf = key_owner(bundle)
    return ClientIdentity(to_pem([leaf, *chain_for(leaf, bundle)]).encode(), bundle.private_key)


def test_issued_certificate_parses_like_the_real_oces3_fixtures(simulator):
    _profile, issued, bundle = issue(simulator, cvr="11223344")
    (leaf,) = leaves(bundle)
    facts = describe(leaf)
    assert facts.cvr == "11223344"
    assert facts.oces_uuid is not None
    assert facts.environment == "test"
    assert facts.oces_type == "organisation"
    assert facts.subject_cn == "Lønsystem"
    assert (facts.key_algorithm, facts.key_size) == ("RSA", 3072)
    assert facts.signature_algorithm == "RSASSA-PSS with SHA-256"
    assert "1.2.208.169.1.1.1.3.7.1" in facts.policies and "0.4.0.2042.1.1" in facts.policies
    assert facts.ocsp_urls and facts.crl_urls
    assert facts.serial_number == issued.serial_number
    assert key_owner(bundle) is leaf
    # The same shape as a real certificate: subject order, and a subject the fixture logic reads alike.
    real = describe(leaves(read_bundle((OCES3_DIR / "test-system-2026-renewed.pem").read_bytes()))[0])
    shape = [part.split("=")[0] for part in facts.subject_dn.split(", ")]
    assert shape == [part.split("=")[0] for part in real.subject_dn.split(", ")]


def test_production_and_employee_certificates(simulator):
    _, _, bundle = issue(simulator, environment="production", kind="employee")
    facts = describe(leaves(bundle)[0])
    assert (facts.environment, facts.oces_type) == ("production", "employee")
    assert "OU=Test - cti" not in facts.issuer_dn


def test_issued_chain_verifies_and_pkcs12_opens_with_openssl(simulator, tmp_path):
    _, issued, _ = issue(simulator)
    (tmp_path / "cert.p12").write_bytes(issued.pkcs12)
    opened = openssl_text(
        "pkcs12", "-in", str(tmp_path / "cert.p12"), "-passin", f"pass:{issued.password}", "-nokeys"
    )
    assert opened.returncode == 0, opened.stderr
    wrong = openssl_text("pkcs12", "-in", str(tmp_path / "cert.p12"), "-passin", "pass:wrong", "-nokeys")
    assert wrong.returncode != 0
    leaf = openssl_text(
        "pkcs12",
        "-in",
        str(tmp_path / "cert.p12"),
        "-passin",
        f"pass:{issued.password}",
        "-nokeys",
        "-clcerts",
    ).stdout
    (tmp_path / "leaf.pem").write_text(leaf)
    (tmp_path / "root.pem").write_bytes(simulator.ca_certificate("test", "root"))
    (tmp_path / "issuing.pem").write_bytes(simulator.ca_certificate("test", "issuing"))
    verified = openssl_text(
        "verify",
        "-CAfile",
        str(tmp_path / "root.pem"),
        "-untrusted",
        str(tmp_path / "issuing.pem"),
        str(tmp_path / "leaf.pem"),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith(": OK")


def test_wrong_pin_counts_down_then_locks_and_never_echoes_the_pin(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    profile = simulator.create_profile()
    mitid = client(simulator)
    seen = []
    for attempt in range(5):
        with pytest.raises(MitIDError) as error:
            mitid.issue(profile["reference_number"], f"WRONG{attempt}PIN", idempotency_key=str(uuid.uuid4()))
        seen.append((error.value.code, error.value.attempts_left))
        assert f"WRONG{attempt}PIN" not in str(error.value) and f"WRONG{attempt}PIN" not in caplog.text
    assert seen[:4] == [("invalid_pin", 4), ("invalid_pin", 3), ("invalid_pin", 2), ("invalid_pin", 1)]
    assert seen[4][0] in {"invalid_pin", "pin_locked"}
    with pytest.raises(MitIDError) as locked:
        mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=str(uuid.uuid4()))
    assert locked.value.code == "pin_locked"
    assert locked.value.sentence == str(SENTENCES["pin_locked"])
    assert (
        "1 attempt is left before the PIN is locked." in MitIDError("invalid_pin", attempts_left=1).sentence
    )


def test_unknown_and_used_reference(simulator):
    mitid = client(simulator)
    with pytest.raises(MitIDError) as unknown:
        mitid.issue("0000 0000 0000", "AAAA-AAAA", idempotency_key=str(uuid.uuid4()))
    assert unknown.value.code == "unknown_reference"
    assert "in the test environment" in unknown.value.sentence

    profile = simulator.create_profile()
    key = str(uuid.uuid4())
    first = mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=key)
    again = mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=key)
    assert again.serial_number == first.serial_number  # a retried request makes no second certificate
    with pytest.raises(MitIDError) as used:
        mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=str(uuid.uuid4()))
    assert used.value.code == "reference_used"
    with pytest.raises(MitIDError) as reused:
        mitid.issue(profile["reference_number"], "ANOTHER-PIN", idempotency_key=key)
    assert reused.value.code == "idempotency_key_reused"


def test_profile_from_the_other_environment_is_unknown(simulator):
    profile = simulator.create_profile(environment="production")
    with pytest.raises(MitIDError) as error:
        client(simulator, "test").issue(profile["reference_number"], profile["pin"], idempotency_key="k-env")
    assert error.value.code == "unknown_reference"


def test_renewal_in_progress_then_issued_with_the_same_identity(simulator, mitid_settings):
    simulator.cli("enable-renewal", "--cvr", "22334455")
    simulator.cli("set-renewal-delay", "--seconds", "1")
    _, _issued, bundle = issue(simulator, cvr="22334455")
    mitid = client(simulator)
    me = identity(bundle)
    order = mitid.request_renewal(me, idempotency_key=str(uuid.uuid4()))
    assert order.status == "in_progress" and order.retry_after is not None
    same = mitid.request_renewal(me, idempotency_key=str(uuid.uuid4()))
    assert same.order_id == order.order_id  # one open order per certificate at the CA too
    deadline = time.monotonic() + 15
    while order.status == "in_progress" and time.monotonic() < deadline:
        time.sleep(min(order.retry_after or 0.5, 1.0))
        order = mitid.order_status(me, order.order_id)
    assert order.status == "issued" and order.issued is not None
    old, new = (
        describe(leaves(bundle)[0]),
        describe(leaves(read_bundle(order.issued.pkcs12, order.issued.password))[0]),
    )
    assert (new.subject_dn, new.oces_uuid, new.cvr) == (old.subject_dn, old.oces_uuid, old.cvr)
    assert new.serial_number != old.serial_number and new.fingerprint_sha256 != old.fingerprint_sha256
    collected_again = mitid.order_status(me, order.order_id)
    assert collected_again.issued.serial_number == order.issued.serial_number


def test_renewal_refused_until_the_organisation_is_enabled(simulator):
    _, _, bundle = issue(simulator, cvr="99887766")
    with pytest.raises(MitIDError) as error:
        client(simulator).request_renewal(identity(bundle), idempotency_key=str(uuid.uuid4()))
    assert error.value.code == "renewal_not_enabled"
    assert "mitiderhverv@digst.dk" in error.value.sentence


def test_expired_certificate_cannot_be_renewed(simulator, mitid_settings):
    simulator.cli("enable-renewal", "--cvr", "33445566")
    simulator.cli("set-validity", "--minutes", "0.05")
    with simulator.clock(-4):  # issued 4 seconds ago, so its 3 seconds are over
        _, _, bundle = issue(simulator, cvr="33445566")
    simulator.cli("set-validity", "--default")
    with pytest.raises(MitIDError) as error:
        client(simulator).request_renewal(identity(bundle), idempotency_key=str(uuid.uuid4()))
    assert error.value.code == "certificate_expired"
    assert "Issue a new certificate" in error.value.sentence


def test_block_turns_ocsp_from_good_to_revoked_and_stops_renewal(simulator, tmp_path):
    simulator.cli("enable-renewal", "--cvr", "44556677")
    _, _issued, bundle = issue(simulator, cvr="44556677")
    leaf = key_owner(bundle)
    (tmp_path / "leaf.pem").write_bytes(
        identity(bundle).certificate_pem.split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n"
    )
    (tmp_path / "issuing.pem").write_bytes(simulator.ca_certificate("test", "issuing"))
    (tmp_path / "root.pem").write_bytes(simulator.ca_certificate("test", "root"))
    ocsp_url = describe(leaf).ocsp_urls[0]

    def ocsp() -> str:
        result = openssl_text(
            "ocsp",
            "-issuer",
            str(tmp_path / "issuing.pem"),
            "-cert",
            str(tmp_path / "leaf.pem"),
            "-url",
            ocsp_url,
            "-CAfile",
            str(tmp_path / "root.pem"),
        )
        assert result.returncode == 0, result.stderr
        assert "Response verify OK" in result.stderr + result.stdout
        return result.stdout

    assert f"{tmp_path / 'leaf.pem'}: good" in ocsp()
    mitid = client(simulator)
    key = str(uuid.uuid4())
    mitid.block(identity(bundle), idempotency_key=key, reason="keyCompromise")
    mitid.block(identity(bundle), idempotency_key=str(uuid.uuid4()))  # blocking twice changes nothing
    assert f"{tmp_path / 'leaf.pem'}: revoked" in ocsp()
    with pytest.raises(MitIDError) as error:
        mitid.request_renewal(identity(bundle), idempotency_key=str(uuid.uuid4()))
    assert error.value.code == "certificate_blocked"


def test_server_not_trusted_is_a_tls_error(simulator):
    with pytest.raises(MitIDError) as error:
        client(simulator, ca_bundle=str(OCES3_DIR / ROOT_CA)).issue("1", "2", idempotency_key="k")
    assert error.value.code == "tls_error" and not error.value.transient
    assert "MITID_CA_BUNDLE" in error.value.sentence


ALL_CODES = [
    "invalid_request",
    "idempotency_key_required",
    "idempotency_key_reused",
    "invalid_pin",
    "pin_locked",
    "unknown_reference",
    "reference_used",
    "client_certificate_required",
    "unknown_certificate",
    "renewal_not_enabled",
    "certificate_blocked",
    "certificate_expired",
    "order_not_found",
    "rate_limited",
    "unavailable",
]


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_problem_code_reaches_the_caller_with_its_sentence(simulator, mitid_settings, code):
    simulator.cli("fault", "error", "--code", code, "--count", "1", "--retry-after", "7")
    with pytest.raises(MitIDError) as error:
        client(simulator).issue("1234 5678 9012", "ABCD-EFGH", idempotency_key=str(uuid.uuid4()))
    assert error.value.code == code
    expected = MitIDError(code, environment="test", attempts_left=error.value.attempts_left)
    assert error.value.sentence == expected.sentence
    assert error.value.transient == (code in {"rate_limited", "unavailable"})
    if code in {"rate_limited", "unavailable"}:
        assert error.value.retry_after == 7


def test_dropped_connection_is_transient_and_the_next_call_works(simulator, mitid_settings):
    simulator.cli("fault", "drop", "--count", "1")
    profile = simulator.create_profile()
    mitid = client(simulator)
    key = str(uuid.uuid4())
    with pytest.raises(MitIDError) as error:
        mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=key)
    assert error.value.code == "unavailable" and error.value.transient
    assert mitid.issue(profile["reference_number"], profile["pin"], idempotency_key=key).serial_number


def test_slow_answer_beyond_the_timeout_is_unavailable(simulator, mitid_settings):
    simulator.cli("fault", "slow", "--seconds", "3", "--count", "1")
    impatient = MitIDClient(
        simulator.base_url(), environment="test", ca_bundle=simulator.tls_ca, timeout=(2, 1)
    )
    with pytest.raises(MitIDError) as error:
        impatient.issue("1", "2", idempotency_key=str(uuid.uuid4()))
    assert error.value.code == "unavailable"
