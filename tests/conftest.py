"""Shared fixtures: the real OCES3 certificates, named users, a logged-in administrator, the simulator;
and the `database` mark, which `make test` uses to run only what depends on the database twice."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from .support.processes import (
    MIGRATED_DATABASE_URL,
    Simulator,
    fresh_state,
    migrated_sqlite_template,
    running_simulator,
    simulator_keys,
)

OCES3_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "oces3"

SYSTEM_2023 = "test-system-2023.pem"
SYSTEM_2026 = "test-system-2026-renewed.pem"
ROOT_CA = "test-root-ca.pem"
ISSUING_CA = "test-issuing-ca-1.pem"
ALL_FIXTURES = [ROOT_CA, ISSUING_CA, SYSTEM_2023, SYSTEM_2026]

SKAT_CVR = "19552101"
SKAT_UUID = "5e50b9bb-22fd-483d-baf7-fd077ed975f5"


def oces3(name: str) -> bytes:
    """The bytes of one of the real public OCES3 certificates in ../shared/fixtures/oces3."""
    path = OCES3_DIR / name
    if not path.exists():
        pytest.fail(f"Missing real OCES3 fixture {path}: the tests need ../shared beside the checkout.")
    return path.read_bytes()


def user_with_role(django_user_model, username: str, role: str, **fields):  # type: ignore[no-untyped-def]
    """A user in one of the role groups that the accounts migration creates."""
    from accounts.roles import set_role

    user = django_user_model.objects.create_user(
        username, f"{username}@example.dk", f"{username}-pw-1", **fields
    )
    set_role(user, role)
    return user


@pytest.fixture
def alice(django_user_model):  # type: ignore[no-untyped-def]
    """An administrator (the Administrator role; staff, not superuser) who uses the portal."""
    return user_with_role(django_user_model, "alice", "Administrator", is_staff=True)


@pytest.fixture
def olga_client(django_user_model) -> Client:  # type: ignore[no-untyped-def]
    """Logged in as Olga, an operator."""
    client = Client()
    client.force_login(user_with_role(django_user_model, "olga", "Operator"))
    return client


@pytest.fixture
def vera_client(django_user_model) -> Client:  # type: ignore[no-untyped-def]
    """Logged in as Vera, a viewer."""
    client = Client()
    client.force_login(user_with_role(django_user_model, "vera", "Viewer"))
    return client


@pytest.fixture
def alice_client(alice) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(alice)
    return client


# The test database ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Each pytest(-xdist) process's test database starts as a copy of one that `manage.py migrate` made
    on this code, instead of migrating a new one (about 10 s of CPU per process, the whole suite's
    migrations): on SQLite a copy of the migrated template file; on the PostgreSQL run, whose database is
    a copy of a migrated cluster, a `CREATE DATABASE ... TEMPLATE` of it. Django's own `migrate` then runs
    as usual and finds nothing to do, so a migration the templates lack would still be applied."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # A new file (written aside, then renamed over the old one), so a run still using the old one in
        # this checkout keeps its own; and no journal of an interrupted run is rolled into the copy.
        name = Path(database["TEST"]["NAME"])
        for leftover in ("-journal", "-wal", "-shm"):
            Path(f"{name}{leftover}").unlink(missing_ok=True)
        partial = name.with_name(f"{name.name}.{os.getpid()}.partial")
        shutil.copyfile(migrated_sqlite_template(), partial)
        os.replace(partial, name)
    elif (url := os.environ.get("DATABASE_URL")) and url == os.environ.get(MIGRATED_DATABASE_URL):
        database.setdefault("TEST", {})["TEMPLATE"] = database["NAME"]


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest) -> bool:
    """Keep (do not re-create) the SQLite test database copied above; elsewhere as pytest-django does."""
    from django.conf import settings

    sqlite = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    return sqlite or bool(request.config.getvalue("reuse_db"))


# Fixtures through which a test reaches the database (pytest-django's, and those built on them).
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}


# Modules whose tests use the database only in passing (sessions, users, permissions, settings pages, the
# audit log, outbound OCSP, file parsing): what they check is the same on every database, so they run
# once, on SQLite. Every other module's database tests also run on PostgreSQL: a new module is covered
# there unless it is added here.
SAME_ON_EVERY_DATABASE = {
    "tests/test_access.py",
    "tests/test_admin.py",
    "tests/test_api_schema.py",
    "tests/test_api_tokens.py",
    "tests/test_audit.py",
    "tests/test_commands.py",
    "tests/test_downloads.py",
    "tests/test_fuzz_import.py",
    "tests/test_hostile_files.py",
    "tests/test_i18n.py",
    "tests/test_login.py",
    "tests/test_ocsp_outbound.py",
    "tests/test_own_email.py",
    "tests/test_settings_pages.py",
    "tests/test_trust.py",
    "tests/test_two_factor.py",
    "tests/test_vault.py",
    "tests/mitid/test_issue_page.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `database` the tests whose outcome can depend on the database: those that use it (the
    `django_db` mark or a fixture that leads to `db`), outside SAME_ON_EVERY_DATABASE.

    `make test` runs these on PostgreSQL too (`-m database`: locking, query plans and indexes, trigram
    search, keyset pages, aggregates, bulk import, conditional updates) and everything once on SQLite.
    The simulator, parsing, browser and process tests start what they need themselves, whatever database
    the run has.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.nodeid.split("::", 1)[0]
        uses_database = item.get_closest_marker("django_db") or fixtures & DATABASE_FIXTURES
        if uses_database and module not in SAME_ON_EVERY_DATABASE:
            item.add_marker(pytest.mark.database)
    # The `slow` tests (processes, the browser) first: under pytest-xdist the long ones then start at once
    # and the many short ones fill the gaps, instead of one long test running alone at the end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`make test` runs `-n 2`) tests go to whichever worker is free, except those
    that share an expensive fixture, which each worker would make for itself: the browser journeys (one
    portal and one Chromium) go to one worker together, and so does each simulator module (its own
    simulator process). (xdist's own `--dist loadgroup` does this with marks, but not on pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    # Hand the work out in the order of the collection (slow tests first, above), not by group size.
    config.option.loadscopereorder = False

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path.startswith("tests/e2e/"):
                return "tests/e2e"
            if path.startswith("tests/simulator/"):
                return path
            return nodeid

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session")
def seed_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's CA and TLS keys, made once per run (shared by pytest-xdist's workers) and copied
    into each simulator's own state directory (`fresh_state`)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common directory
    return simulator_keys(root)


@pytest.fixture(scope="session")
def simulator(seed_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One real MitID Erhverv simulator process for the whole run, with its own state directory."""
    state = fresh_state(seed_state, tmp_path_factory.mktemp("simulator"))
    with running_simulator(state) as running:
        yield running


@pytest.fixture
def mitid_settings(settings, simulator: Simulator):  # type: ignore[no-untyped-def]
    """Point the portal at the test simulator; faults and settings a test leaves are reset afterwards."""
    settings.MITID_TEST_URL = simulator.base_url("test")
    settings.MITID_PRODUCTION_URL = simulator.base_url("production")
    settings.MITID_CA_BUNDLE = simulator.tls_ca
    # The simulator's roots are trusted as `make run` trusts them (certificates.trust).
    ca = simulator.state_dir / "ca"
    settings.TRUSTVIEW_TRUST_ROOTS_EXTRA = [str(ca / name / "root.pem") for name in ("test", "production")]
    yield settings
    simulator.cli("fault", "clear")
    simulator.cli("set-validity", "--default")
    simulator.cli("set-renewal-delay", "--seconds", "5")


@pytest.fixture(autouse=True, scope="session")
def _task_queue() -> None:
    """Tests call services and task bodies directly; queued messages go to memory, not to var/, or, on
    the PostgreSQL + Redis run of `make test`, to that run's throw-away Redis (which no worker reads)."""
    from trustview.celery import app

    app.conf.broker_url = os.environ.get("REDIS_URL") or "memory://"
    app.conf.broker_transport_options = {}


@pytest.fixture
def renewable(simulator, mitid_settings):  # type: ignore[no-untyped-def]
    """Issue a certificate through the portal's MitID service for an organisation enabled for renewal."""
    from mitid.services import issue_certificate

    def make(cvr: str = "12121212", name: str = "Lønsystem", actor: str = "test"):  # type: ignore[no-untyped-def]
        simulator.cli("enable-renewal", "--cvr", cvr)
        profile = simulator.create_profile(cvr=cvr, name=name)
        outcome = issue_certificate(
            environment="test", reference_number=profile["reference_number"], pin=profile["pin"], actor=actor
        )
        return outcome.certificate

    return make


@pytest.fixture(autouse=True)
def _language_reset() -> Iterator[None]:
    """A test that leaves Danish active (a request with Accept-Language: da) must not turn the next
    test's sentences Danish: each test starts and ends in the default language."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _quick_password_hashing(settings):  # type: ignore[no-untyped-def]
    """Tests make many users: hash their passwords with a cheap hasher (Django's own advice for test
    suites). The portal's real hasher (PBKDF2, a million iterations) is what runs everywhere else,
    including the processes the tests start."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
