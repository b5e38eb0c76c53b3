"""An administrator logs in, imports the real OCES3 files in a browser, and reads what the portal learnt."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..conftest import ALL_FIXTURES, OCES3_DIR, SKAT_CVR, SKAT_UUID
from .conftest import log_in, screenshot

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow

SKAT = "Skatteministeriet - B2B gateway TSE TEST"


def test_anonymous_visitor_is_sent_to_the_login_page(page):
    page.goto("/certificates/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/certificates/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username and password")


def test_import_each_fixture_and_follow_the_renewal_link(page):
    log_in(page)
    for name in ALL_FIXTURES:
        page.get_by_role("link", name="Import", exact=True).click()
        page.get_by_label("Certificate file").set_input_files(str(OCES3_DIR / name))
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_role("status")).to_contain_text("Imported")

    # The last import (the 2026 renewal) lands on its own page.
    expect(page.get_by_role("heading", level=1)).to_have_text(SKAT)
    expect(page.get_by_role("status")).to_contain_text(
        "It is the renewal of the certificate valid to 2026-04-10"
    )
    facts = page.locator("dl.facts")
    for text in [SKAT_CVR, SKAT_UUID, "Test", "Organisation", "2026-03-25", "2029-03-24", "RSA 3072 bit"]:
        expect(facts.filter(has_text=text).first).to_be_visible()
    expect(page.get_by_role("link", name="Den Danske Stat OCES udstedende-CA 1")).to_be_visible()
    expect(page.locator(".badge")).to_have_text("Valid")
    screenshot(page, "certificate-detail")

    page.get_by_role("link", name="the certificate valid to 2026-04-10").click()
    expect(page.locator(".badge")).to_have_text("Expired")
    expect(page.get_by_text("Superseded", exact=True)).to_be_visible()
    page.get_by_role("link", name="the certificate valid to 2029-03-24").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(SKAT)

    page.get_by_role("link", name="Certificates", exact=True).click()
    expect(page.get_by_role("row")).to_have_count(5)  # header and four certificates
    page.get_by_role("textbox", name="Search").fill("4C:5F:96:B2")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("row")).to_have_count(2)
    expect(page.get_by_role("row").nth(1)).to_contain_text("2029-03-24")
    screenshot(page, "certificate-list")

    # The same file again is one certificate.
    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("Certificate file").set_input_files(str(OCES3_DIR / ALL_FIXTURES[-1]))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("Already present")


def test_a_file_that_is_no_certificate_gets_a_sentence_at_the_field(page, tmp_path):
    log_in(page)
    notes = tmp_path / "notes.txt"
    notes.write_text("Remember to renew the certificate in March.\n")
    page.goto("/certificates/import/")
    page.get_by_label("Certificate file").set_input_files(str(notes))
    page.get_by_role("button", name="Import").click()
    field = page.get_by_label("Certificate file")
    expect(field).to_have_accessible_description(re.compile("^The file is not a certificate."))
    expect(page.get_by_role("alert")).to_have_text(re.compile("Choose a PEM, DER or PKCS#12 file"))
    # The stylesheet is served by the app itself (no CDN).
    assert page.evaluate("getComputedStyle(document.querySelector('.error')).color") == "rgb(207, 34, 46)"
