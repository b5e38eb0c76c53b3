"""An administrator issues an OCES certificate with PIN and reference number, then downloads its PKCS#12."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from .conftest import log_in, screenshot

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow


def test_wrong_pin_then_issue_then_download_pkcs12(page, simulator, tmp_path):
    profile = simulator.create_profile(cvr="24681357", name="Løn og fakturering")
    log_in(page)
    page.get_by_role("link", name="Issue", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Issue OCES certificate")

    page.get_by_label("PIN").fill("WRONG-PIN")
    page.get_by_label("Reference number").fill(profile["reference_number"])
    page.get_by_label("Test").check()
    page.get_by_role("button", name="Issue certificate").click()
    expect(page.get_by_label("PIN")).to_have_accessible_description(
        re.compile("^The PIN is not right. 4 attempts are left before the PIN is locked.")
    )
    expect(page.get_by_label("PIN")).to_have_value("")  # a PIN is never sent back to the browser

    page.get_by_label("PIN").fill(profile["pin"])
    page.get_by_role("button", name="Issue certificate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Løn og fakturering")
    expect(page.get_by_role("status")).to_contain_text("Issued “Løn og fakturering”")
    facts = page.locator("dl.facts")
    for text in ["24681357", "Test", "Organisation", "MitID Erhverv", "Held by the portal, encrypted"]:
        expect(facts.filter(has_text=text).first).to_be_visible()
    screenshot(page, "issued-certificate")

    page.get_by_role("button", name="Download PKCS#12 with private key").click()
    password = page.get_by_label("Password").input_value()
    assert len(password) >= 16
    with page.expect_download() as download_info:
        page.get_by_role("button", name=re.compile(r"^Download .*\.p12$")).click()
    path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(path)
    assert path.name.startswith("loen-og-fakturering-")
    opened = subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-passin", f"pass:{password}", "-nodes"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    assert opened.returncode == 0, opened.stderr
    assert "BEGIN PRIVATE KEY" in opened.stdout and opened.stdout.count("BEGIN CERTIFICATE") == 3

    page.get_by_role("link", name="Back to the certificate").click()
    expect(page.locator("table.history")).to_contain_text("Key downloaded")
    expect(page.locator("table.history")).to_contain_text("Issued by MitID Erhverv (test)")
