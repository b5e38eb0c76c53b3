"""Production settings as an operator meets them: `check --deploy` is clean with the variables that
docs/operations.md documents, and a missing or weak secret stops the portal with a sentence naming it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]

# What docs/operations.md ("Deploy") tells an operator to set; docker-compose.yml sets the same.
DOCUMENTED_PRODUCTION_VARIABLES = [
    "TRUSTVIEW_ENV",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "TRUSTVIEW_KEY_ENCRYPTION_KEYS",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "TRUSTVIEW_BEHIND_PROXY",
]
NOT_FERNET = "TRUSTVIEW_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key"


def production_env(var_dir: Path, **changes: str | None) -> dict[str, str]:
    """The documented production variables, with CHANGES (None removes one); nothing else of ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "TRUSTVIEW_", "MITID_", "CELERY_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL")
    }
    env.update(
        {
            "TRUSTVIEW_VAR_DIR": str(var_dir),
            "TRUSTVIEW_ENV": "production",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "TRUSTVIEW_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_ALLOWED_HOSTS": "trustview.example.dk",
            "DATABASE_URL": "postgres://trustview:db-password@postgres:5432/trustview",
            "REDIS_URL": "redis://redis:6379/0",
            "EMAIL_URL": "smtp+tls://trustview:mail-password@smtp.example.dk:587",
            "TRUSTVIEW_BEHIND_PROXY": "true",
        }
    )
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def test_the_tests_use_the_variables_the_operations_guide_documents():
    guide = (REPO / "docs" / "operations.md").read_text()
    example = (REPO / ".env.example").read_text()
    for name in DOCUMENTED_PRODUCTION_VARIABLES:
        assert name in guide, f"{name} is not in docs/operations.md"
        assert name in example, f"{name} is not in .env.example"


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set"),
        ({"DJANGO_SECRET_KEY": "too-short-but-random-Xq8"}, "DJANGO_SECRET_KEY is too short or insecure"),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)},
            "DJANGO_SECRET_KEY is too short or insecure",
        ),
        ({"DJANGO_SECRET_KEY": "abab" * 20}, "DJANGO_SECRET_KEY is too short or insecure"),
        ({"TRUSTVIEW_KEY_ENCRYPTION_KEYS": None}, "TRUSTVIEW_KEY_ENCRYPTION_KEYS is not set"),
        ({"TRUSTVIEW_KEY_ENCRYPTION_KEYS": "not-a-fernet-key"}, NOT_FERNET),
        ({"TRUSTVIEW_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode() + ",not-a-fernet-key"}, NOT_FERNET),
        ({"TRUSTVIEW_ENV": "prod"}, "TRUSTVIEW_ENV is development or production"),
    ],
)
def test_production_refuses_to_start_with_a_missing_or_insecure_secret(tmp_path, changes, sentence):
    result = manage(production_env(tmp_path, **changes), "check")
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {sentence}" in result.stderr
    # No value is echoed, and production never falls back to generating development secrets.
    for value in changes.values():
        if value and value != "prod":
            assert value not in result.stderr
    assert not (tmp_path / "secret-key").exists() and not (tmp_path / "key-encryption.key").exists()


def test_the_sentence_says_how_to_make_a_value(tmp_path):
    result = manage(production_env(tmp_path, TRUSTVIEW_KEY_ENCRYPTION_KEYS=None), "check")
    assert "make one with: python -m certificates.vault" in result.stderr


def test_development_still_needs_no_variable_at_all(tmp_path):
    env = production_env(tmp_path)
    for name in DOCUMENTED_PRODUCTION_VARIABLES:
        env.pop(name)
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret-key").exists() and (tmp_path / "key-encryption.key").exists()


def test_debug_on_is_never_production(tmp_path):
    """DJANGO_DEBUG=true keeps development behaviour even with TRUSTVIEW_ENV=production (and its warning
    from check --deploy), so a debugging session is never mistaken for a hardened deployment."""
    env = production_env(tmp_path, DJANGO_DEBUG="true", DJANGO_SECRET_KEY=None)
    result = manage(env, "check", "--deploy")
    assert result.returncode == 0, result.stderr
    assert "security.W018" in result.stderr  # DEBUG on in deployment
