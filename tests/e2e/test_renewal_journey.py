"""An administrator renews a certificate with "Renew now" and watches it complete; beat renews one before
it lapses with nobody clicking; an administrator blocks one."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time

import pytest
from playwright.sync_api import expect

from .conftest import log_in, screenshot

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow


def issue_in_browser(page, simulator, cvr: str, name: str) -> str:  # type: ignore[no-untyped-def]
    profile = simulator.create_profile(cvr=cvr, name=name)
    page.goto("/mitid/issue/")
    page.get_by_label("PIN").fill(profile["pin"])
    page.get_by_label("Reference number").fill(profile["reference_number"])
    page.get_by_role("button", name="Issue certificate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return page.url


def test_renew_now_shows_progress_then_the_new_certificate_without_a_reload(page, simulator):
    simulator.cli("enable-renewal", "--cvr", "31313131")
    simulator.cli("set-renewal-delay", "--seconds", "3")
    try:
        log_in(page)
        old_url = issue_in_browser(page, simulator, "31313131", "Indberetning")
        page.get_by_role("button", name="Renew now").click()
        expect(page.get_by_role("status").filter(has_text="Renewal in progress")).to_be_visible()
        screenshot(page, "renewal-in-progress")
        # The page follows the order by itself and opens the new certificate when it is ready.
        expect(page).not_to_have_url(old_url, timeout=30_000)
        expect(page.get_by_role("heading", level=1)).to_have_text("Indberetning")
        expect(page.get_by_text("Renewed: this is the new certificate.")).to_be_visible()
        expect(page.get_by_text("Renews")).to_be_visible()
        expect(page.locator(".badge")).to_have_text("Valid")
        expect(page.get_by_role("button", name="Renew now")).to_be_enabled()
        page.get_by_role("link", name=re.compile("^the certificate valid to")).click()
        expect(page).to_have_url(old_url)
        expect(page.locator(".badge")).to_have_text("Superseded")
        expect(page.locator("#situation-explanation")).to_contain_text("already been renewed")
    finally:
        simulator.cli("set-renewal-delay", "--seconds", "5")


# A short-lived certificate (renewal due at a third of its life left), issued with the simulator's clock
# set back so that it is due at once: nothing waits for it to age. Two minutes leave 40 seconds between
# "due" and "lapsed", enough for a loaded machine to renew; a longer life costs no test time.
LIFETIME_MINUTES = 2
AGE_SECONDS = LIFETIME_MINUTES * 60 * 2 / 3


def test_beat_renews_a_certificate_before_it_lapses_with_nobody_clicking(page, simulator, portal):
    """The promise of the product, on `make run`'s own processes (web, worker and beat on SQLite and the
    embedded broker; the sweep every 2 seconds)."""
    simulator.cli("enable-renewal", "--cvr", "34343434")
    simulator.cli("set-renewal-delay", "--seconds", "1")
    simulator.cli("set-validity", "--minutes", str(LIFETIME_MINUTES))
    database = portal.var_dir / "trustview.sqlite3"

    def renewal_of(certificate: int) -> tuple[int, str] | None:
        with sqlite3.connect(database) as db:
            row = db.execute(
                "SELECT id, not_before FROM certificates_certificate WHERE renewed_from_id = ?",
                (certificate,),
            ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    try:
        log_in(page)
        try:
            with simulator.clock(-AGE_SECONDS):
                old_url = issue_in_browser(page, simulator, "34343434", "Natlig fornyelse")
        finally:
            # The renewal gets the usual three years, so it is not due again while the other journeys run.
            simulator.cli("set-validity", "--default")
        original = int(re.search(r"/certificates/(\d+)/$", old_url).group(1))  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while (renewal := renewal_of(original)) is None and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        simulator.cli("set-renewal-delay", "--seconds", "5")
    worker_log = (portal.var_dir / "worker.log").read_text(errors="replace")
    assert renewal is not None, "beat did not renew it: " + worker_log[-3000:]
    with sqlite3.connect(database) as db:
        (old_not_after,) = db.execute(
            "SELECT not_after FROM certificates_certificate WHERE id = ?", (original,)
        ).fetchone()
    assert dt.datetime.fromisoformat(renewal[1]) < dt.datetime.fromisoformat(old_not_after), (
        "renewed too late"
    )
    assert "Sending due task renewal-sweep" in (portal.var_dir / "beat.log").read_text(errors="replace")
    assert "certificates.tasks.process_order" in worker_log

    # What the administrator finds afterwards: the old certificate superseded, pointing to the new one.
    page.goto(old_url)
    expect(page.locator(".badge")).to_have_text("Superseded")
    page.get_by_role("link", name=re.compile("^the certificate valid to")).click()
    expect(page).to_have_url(re.compile(rf"/certificates/{renewal[0]}/$"))
    expect(page.get_by_text("Renews")).to_be_visible()
    expect(page.locator(".badge")).to_have_text("Valid")


def test_block_asks_for_confirmation_naming_the_certificate(page, simulator):
    log_in(page)
    issue_in_browser(page, simulator, "32323232", "Gammelt system")
    page.get_by_role("button", name="Block…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Block “Gammelt system”?")
    expect(page.get_by_text("This cannot be undone.")).to_be_visible()
    page.get_by_role("button", name="Block this certificate").click()
    expect(page.get_by_role("status")).to_contain_text("“Gammelt system” is blocked.")
    expect(page.locator(".badge")).to_have_text("Blocked")
    expect(page.locator("#situation-explanation")).to_contain_text("The certificate is blocked")
    expect(page.get_by_role("button", name="Block…")).to_have_count(0)
    page.get_by_role("link", name="Certificates", exact=True).click()
    expect(page.get_by_role("row").filter(has_text="Gammelt system")).to_contain_text("Blocked")
