"""docker-compose.yml, the Dockerfile and .env.example, read as Docker Compose would read them.

There is no Docker engine in CI, so these check the structure that makes the stack work: every service
and its health check, start-up order, a scalable worker and exactly one beat, the simulator as an
optional profile, required secrets, and every variable documented.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PORTAL = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def documented() -> set[str]:
    """Variable names .env.example documents (set or commented out)."""
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^[#\s]*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_the_stack_has_its_services(services):
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat", "simulator"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in ("migrate", *PORTAL, "simulator"):
        assert services[name]["build"] == ".", name


def test_every_long_running_service_has_a_health_check(services):
    expected = {
        "postgres": "pg_isready",
        "redis": "redis-cli ping",
        "web": "trustview.health probe http://127.0.0.1:8000/healthz",
        "worker": "inspect ping --destination=celery@$$HOSTNAME",
        "beat": "trustview.health sweep",
        "simulator": "trustview.health probe http://127.0.0.1:8444/",
    }
    for name, words in expected.items():
        assert words in healthcheck_text(services[name]), name
        assert services[name]["healthcheck"]["interval"], name
    assert "healthcheck" not in services["migrate"]  # a one-shot job: it exits, and others wait for that


def test_nothing_starts_before_postgres_and_redis_are_healthy_and_migrations_have_run(services):
    for name in PORTAL:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "manage.py migrate --noinput" in command_text(services["migrate"])
    assert "manage.py ensure_superuser" in command_text(services["migrate"])
    assert services["migrate"]["restart"] == "no"


def test_the_processes_are_gunicorn_and_celery(services):
    assert command_text(services["web"]).startswith("gunicorn trustview.wsgi")
    assert command_text(services["worker"]).startswith("celery --app=trustview worker")
    assert command_text(services["beat"]).startswith("celery --app=trustview beat")


def test_workers_scale_and_beat_does_not(services):
    worker = services["worker"]
    # --scale worker=N needs containers that differ only in their number.
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert services["beat"]["deploy"]["replicas"] == 1


def test_the_simulator_is_an_optional_profile_reachable_by_its_name(services):
    assert services["simulator"]["profiles"] == ["simulator"]
    for name, service in services.items():
        if name != "simulator":
            assert "profiles" not in service, name
    command = command_text(services["simulator"])
    assert "--tls-name simulator" in command
    assert "mitid.simulator serve --host 0.0.0.0" in command
    assert "simulator-state:/simulator" in services["simulator"]["volumes"]
    for name in PORTAL:  # the TLS CA for MITID_CA_BUNDLE=/simulator/tls/ca.pem
        assert "simulator-state:/simulator:ro" in services[name]["volumes"], name


def test_data_lives_in_named_volumes(compose, services):
    assert set(compose["volumes"]) == {"postgres-data", "simulator-state"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_the_portal_runs_in_production_mode_with_required_secrets(services):
    for name in ("migrate", *PORTAL):
        environment = services[name]["environment"]
        assert environment["TRUSTVIEW_ENV"] == "production", name
        assert environment["DJANGO_DEBUG"] == "false", name
        for secret in ("DJANGO_SECRET_KEY", "TRUSTVIEW_KEY_ENCRYPTION_KEYS", "DJANGO_ALLOWED_HOSTS"):
            assert environment[secret].startswith(f"${{{secret}:?"), (name, secret)
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["env_file"] == ".env"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_web_is_published_on_the_loopback_for_a_tls_proxy(services):
    assert services["web"]["ports"] == ["${TRUSTVIEW_HTTP_BIND:-127.0.0.1:8000}:8000"]
    assert services["web"]["environment"]["TRUSTVIEW_BEHIND_PROXY"] == "${TRUSTVIEW_BEHIND_PROXY:-true}"


def test_every_variable_the_compose_file_uses_is_documented():
    lines = (REPO / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    assert used, "no ${VARIABLE} found"
    assert used - documented() == set()


def test_every_variable_the_settings_read_is_documented():
    used: set[str] = set()
    for path in ("trustview/settings.py", "trustview/run.py"):
        used |= set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', (REPO / path).read_text()))
    assert "TRUSTVIEW_ENV" in used
    assert used - documented() == set()


def test_the_image_is_built_for_production():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "manage.py collectstatic --noinput" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^CMD .*gunicorn", dockerfile, flags=re.MULTILINE)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and "var" in ignored  # no secrets in the image


def test_workers_consume_the_control_queue_and_the_order_queue(services):
    # Order steps have their own queue (CELERY_TASK_ROUTES), so a backlog of them never holds up a sweep.
    assert "--queues=${CELERY_WORKER_QUEUES:-celery,orders}" in command_text(services["worker"])
    assert "CELERY_WORKER_QUEUES" in documented()
    run = (REPO / "trustview" / "run.py").read_text()
    assert '"-Q", "celery,orders"' in run  # make run's one worker takes both
