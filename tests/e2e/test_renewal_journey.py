"""An administrator renews a certificate with "Renew now" and watches it complete; then blocks one."""

from __future__ import annotations

import re

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
