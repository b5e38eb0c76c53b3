"""Section 8's operator commands: JSON out, one-sentence errors with status 2, and where state lives."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, cli, cli_process, fresh_state, without_state_env


@pytest.fixture(scope="module")
def state(seed_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_state(seed_state, tmp_path_factory.mktemp("cli"))


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["launch"],
        ["create-profile"],
        ["create-profile", "--cvr", "1234", "--name", "Lønsystem"],
        ["create-profile", "--cvr", "12345678", "--name", "x" * 65],
        ["create-profile", "--cvr", "12345678", "--name", "x", "--type", "person"],
        ["create-profile", "--cvr", "12345678", "--name", "x", "--environment", "staging"],
        ["set-validity"],
        ["set-validity", "--minutes", "-1"],
        ["set-validity", "--minutes", "1", "--default"],
        ["set-renewal-delay", "--seconds", "soon"],
        ["block", "--serial", "xyz"],
        ["fault"],
        ["fault", "error", "--code", "teapot"],
        ["fault", "error", "--code", "unavailable", "--count", "0"],
        ["fault", "slow"],
        ["serve", "--port", "70000"],
    ],
)
def test_bad_arguments_give_one_sentence_and_status_2(tmp_path: Path, args: list[str]) -> None:
    result = cli_process(tmp_path / "state", *args)
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.endswith(".\n"), result.stderr
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr


def test_create_profile_prints_reference_pin_and_facts(state: Path) -> None:
    made = cli(state, "create-profile", "--cvr", "12345678", "--name", "Lønsystem", "--type", "employee")
    assert re.fullmatch(r"\d{4} \d{4} \d{4}", made["reference_number"])
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", made["pin"])
    assert {k: made[k] for k in ("environment", "cvr", "name", "organisation_name", "type")} == {
        "environment": "test",
        "cvr": "12345678",
        "name": "Lønsystem",
        "organisation_name": "Organisation 12345678",
        "type": "employee",
    }
    production = cli(
        state, "create-profile", "--cvr", "12345678", "--name", "x", "--environment", "production"
    )
    assert production["environment"] == "production" and production["type"] == "organisation"
    counts = cli(state, "status")["environments"]
    assert counts["test"]["profiles"] >= 1 and counts["production"]["profiles"] >= 1


def test_settings_show_in_status(state: Path) -> None:
    settings = cli(state, "status")["settings"]
    assert settings["renewal_delay_seconds"] == 5 and settings["validity"] == "3 years"
    assert cli(state, "set-validity", "--minutes", "0.05")["validity_minutes"] == 0.05
    assert cli(state, "status")["settings"]["validity_minutes"] == 0.05
    assert cli(state, "set-validity", "--default")["validity_minutes"] is None
    cli(state, "set-renewal-delay", "--seconds", "2.5")
    cli(state, "enable-renewal", "--cvr", "11112222")
    settings = cli(state, "status")["settings"]
    assert settings["renewal_delay_seconds"] == 2.5 and settings["validity"] == "3 years"
    assert "11112222" in settings["renewal_enabled_cvrs"]
    cli(state, "disable-renewal", "--cvr", "11112222")
    assert "11112222" not in cli(state, "status")["settings"]["renewal_enabled_cvrs"]


def test_state_dir_comes_from_the_environment_then_var_simulator(seed_state: Path, tmp_path: Path) -> None:
    from_env = tmp_path / "from-env"
    shutil.copytree(seed_state, from_env)
    env = {**without_state_env(), "MITID_SIMULATOR_STATE": str(from_env), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mitid.simulator", "status"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state_dir"] == str(from_env)

    default = tmp_path / "var" / "simulator"
    shutil.copytree(seed_state, default)
    env = {**without_state_env(), "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state_dir"] == str(default)


def test_the_simulator_imports_nothing_of_the_portal() -> None:
    code = (
        "import sys, mitid.simulator.__main__, mitid.simulator.server; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'certificates', 'trustview') "
        "or (m.startswith('mitid.') and not m.startswith('mitid.simulator'))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_two_processes_making_the_keys_at_once_agree(tmp_path: Path) -> None:
    """First use from two processes at the same moment: one makes the CAs, the other waits and uses them."""
    state = tmp_path / "state"
    command = [sys.executable, "-m", "mitid.simulator", "status", "--state-dir", str(state)]
    processes = [
        subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    pems = sorted(p.relative_to(state) for p in state.rglob("*.pem"))
    assert [str(p) for p in pems] == [
        "ca/production/issuing.pem",
        "ca/production/root.pem",
        "ca/test/issuing.pem",
        "ca/test/root.pem",
        "tls/ca.pem",
        "tls/server.pem",
    ]
    assert not list(state.rglob(".*.pem.*")), "no temporary files left behind"
