"""Management commands: import_certificates and ensure_superuser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from certificates.models import Certificate

from . import pki
from .conftest import OCES3_DIR, SYSTEM_2023, SYSTEM_2026

pytestmark = pytest.mark.django_db


def test_import_command_links_the_renewal_and_reports_each_file(capsys):
    call_command("import_certificates", str(OCES3_DIR / SYSTEM_2023), str(OCES3_DIR / SYSTEM_2026))
    out = capsys.readouterr().out
    assert out.count("Imported") == 2
    assert "It is the renewal of the certificate valid to 2026-04-10, which is now superseded." in out
    assert Certificate.objects.get(not_after__year=2029).renewed_from.not_after.year == 2026


def test_import_command_goes_on_after_a_bad_file_and_fails_at_the_end(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a certificate")
    with pytest.raises(CommandError, match="2 of 3 files were not imported"):
        call_command(
            "import_certificates", str(bad), str(OCES3_DIR / SYSTEM_2023), str(tmp_path / "missing.pem")
        )
    captured = capsys.readouterr()
    assert "notes.txt: The file is not a certificate." in captured.err
    assert "missing.pem: The file cannot be read: No such file or directory." in captured.err
    assert Certificate.objects.count() == 1


def test_import_command_reads_the_pkcs12_password_from_a_file(tmp_path, capsys):
    ca = pki.make_ca()
    leaf = pki.make_leaf(ca)
    (tmp_path / "system.p12").write_bytes(pki.p12(leaf, [ca], "fra fil"))
    (tmp_path / "password").write_text("fra fil\n")
    call_command(
        "import_certificates", str(tmp_path / "system.p12"), "--password-file", str(tmp_path / "password")
    )
    assert Certificate.objects.get().has_private_key
    assert "fra fil" not in capsys.readouterr().out


def test_import_command_exit_status_in_a_real_process(tmp_path):
    """As a script would see it: status 1 and the sentence on stderr."""
    bad = tmp_path / "big.pem"
    bad.write_bytes(b"x" * (1024 * 1024 + 1))
    result = subprocess.run(
        [sys.executable, "manage.py", "import_certificates", str(bad)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        env={"TRUSTVIEW_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "The file is larger than 1024 KiB" in result.stderr
    assert "Traceback" not in result.stderr


def test_ensure_superuser_from_environment_then_generated(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-pass-phrase")
    call_command("ensure_superuser")
    assert get_user_model().objects.get(username="ops").check_password("a-long-pass-phrase")
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME")
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD")
    call_command("ensure_superuser")
    assert "Superuser 'ops' exists" in capsys.readouterr().out


def test_ensure_superuser_generates_and_prints_a_password_once(monkeypatch, capsys):
    for name in ["DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"]:
        monkeypatch.delenv(name, raising=False)
    call_command("ensure_superuser")
    out = capsys.readouterr().out
    password = out.split("with password: ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_ensure_superuser_gives_an_existing_administrator_the_address_so_alerts_reach_someone(monkeypatch):
    for name in ["DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    call_command("ensure_superuser")  # the first `make run`: no address
    assert get_user_model().objects.get(username="admin").email == ""
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "pki@example.dk")
    call_command("ensure_superuser")  # the next, with DJANGO_SUPERUSER_EMAIL set
    assert get_user_model().objects.get(username="admin").email == "pki@example.dk"
    from certificates.alerts import recipients

    assert recipients() == ["pki@example.dk"]
