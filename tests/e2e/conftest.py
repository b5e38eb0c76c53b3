"""Browser tests: a real portal process on a free loopback port, driven by the system Chromium.

The portal runs as a separate `manage.py runserver` process with its own state directory (its own
SQLite database and secrets), so these tests see exactly what an administrator's browser sees.

The portal and the browser last for this package's tests only: Playwright's event loop would make
Django refuse database access in the same process (SynchronousOnlyOperation) to the tests that run after
them, and the portal's processes would go on using the CPU.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..support.processes import RunningPortal, Simulator, running_portal

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("TRUSTVIEW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Each browser context's window would load the address bar's two WebUI pop-ups (chrome://omnibox-popup
    # .top-chrome/) into a renderer of their own, which no test sees: 0.15 s of CPU per context.
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]
ADMIN = ("admin", "browser-test-pass-42")


@dataclass
class Portal:
    url: str
    var_dir: Path
    process: RunningPortal


@pytest.fixture(scope="package")
def portal(tmp_path_factory: pytest.TempPathFactory, simulator: Simulator) -> Iterator[Portal]:
    """Web, worker and beat on the embedded broker, as `make run` starts them, with their own state."""
    var_dir = tmp_path_factory.mktemp("portal-var")
    with running_portal(var_dir, simulator, ADMIN) as running:
        _logged_in.clear()  # a session of another portal means nothing here
        yield Portal(running.url, var_dir, running)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"No Chromium at {CHROMIUM}: `make test` installs Debian's chromium package.")
        pytest.skip(
            f"No Chromium at {CHROMIUM} (set TRUSTVIEW_CHROMIUM, or run `make test`, which installs it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, portal: Portal):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=portal.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # A bound, not a measure: a login is a deliberately slow password hash, and on a loaded machine (the
    # rest of the suite beside it) the first one took over 10 s.
    page.set_default_timeout(20_000)
    yield page
    context.close()


# The administrator's session cookies after the first journey's login, for the journeys after it.
_logged_in: list[Any] = []


def log_in(page) -> None:  # type: ignore[no-untyped-def]
    """Log in as the administrator: through the login page the first time; later journeys start in that
    session, as a person who stays logged in does (each login is a deliberately slow password hash, over
    half a second of the portal's CPU). test_the_browser_language_is_used_until_the_user_chooses logs in
    through the page in Danish."""
    if _logged_in:
        page.context.add_cookies(_logged_in)
        page.goto("/")  # where the login page leads
        return
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    # The administrator has no e-mail address and nobody receives alerts: the portal asks for one after
    # each login (test_more_journeys shows it); the journeys skip it.
    if page.get_by_role("heading", name="Where should alerts go?").is_visible():
        page.get_by_role("button", name="Skip for now").click()
        page.wait_for_load_state()
    _logged_in.extend(page.context.cookies())


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
