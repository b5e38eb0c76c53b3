"""Danish and English, a PKCS#12 import with its password, markup in a subject, and the dashboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .. import pki
from .conftest import ADMIN, log_in, screenshot

# Starts processes (or a browser) and takes seconds: pytest-xdist hands these out first.
pytestmark = pytest.mark.slow


def test_switch_to_danish_and_back(page):
    log_in(page)
    page.get_by_label("Language").select_option("da")
    expect(page.locator("html")).to_have_attribute("lang", "da")
    nav = page.get_by_role("navigation", name="Hovedmenu")
    for word in ["Overblik", "Certifikater", "Udsted", "Importér"]:
        expect(nav.get_by_role("link", name=word, exact=True)).to_be_visible()
    nav.get_by_role("link", name="Udsted", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Udsted OCES-certifikat")
    expect(page.get_by_label("Engangskode")).to_be_visible()
    expect(page.get_by_label("Referencenummer")).to_be_visible()
    page.get_by_label("Engangskode").fill("FORKERT1")
    page.get_by_label("Referencenummer").fill("0000 0000 0000")
    page.get_by_role("button", name="Udsted certifikat").click()
    expect(page.get_by_role("alert").first).to_contain_text("referencenummer")
    page.get_by_label("Sprog").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Issue OCES certificate")


def test_the_browser_language_is_used_until_the_user_chooses(browser, portal):
    context = browser.new_context(base_url=portal.url, locale="da-DK")
    page = context.new_page()
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log ind")
    page.get_by_label("Brugernavn").fill(ADMIN[0])
    page.get_by_label("Adgangskode").fill(ADMIN[1])
    page.get_by_role("button", name="Log ind").click()
    # Nobody receives alerts and the administrator has no address: asked for one, in Danish too.
    expect(page.get_by_role("heading", level=1)).to_have_text("Hvor skal advarsler sendes hen?")
    page.get_by_role("button", name="Spring over indtil videre").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Overblik")
    expect(page.get_by_text("Advarsler når ingen")).to_be_visible()  # the banner stays
    context.close()


def test_import_a_pkcs12_with_its_password(page, tmp_path):
    ca = pki.make_ca("Browser Test CA")
    leaf = pki.make_leaf(ca, pki.name("Webshop TLS"))
    path = tmp_path / "webshop.p12"
    path.write_bytes(pki.p12(leaf, [ca], "Sommer 2026!"))
    log_in(page)
    page.goto("/certificates/import/")
    page.get_by_label("Certificate file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_label("Password")).to_have_accessible_description(
        re.compile("^This PKCS#12 file is protected by a password.")
    )
    page.get_by_label("Certificate file").set_input_files(str(path))
    page.get_by_label("Password").fill("Sommer 2026!")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webshop TLS")
    expect(page.get_by_role("status")).to_contain_text("Its private key is stored encrypted.")
    expect(page.locator("dl.facts").filter(has_text="Held by the portal, encrypted")).to_be_visible()
    expect(page.get_by_role("link", name="Browser Test CA")).to_have_count(
        0
    )  # in the chain, not the inventory
    expect(page.get_by_text("Browser Test CA").first).to_be_visible()


def test_markup_in_a_subject_shows_as_text(page, tmp_path):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ca = pki.make_ca("Markup CA")
    leaf = pki.make_leaf(ca, pki.name("<script>alert('x')</script>", O="<b>Bold</b> A/S"))
    path = tmp_path / "markup.pem"
    path.write_bytes(leaf.pem)
    log_in(page)
    page.goto("/certificates/import/")
    page.get_by_label("Certificate file").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert('x')</script>")
    page.goto("/certificates/?q=script")
    expect(page.get_by_role("link", name="<script>alert('x')</script>")).to_be_visible()
    page.goto("/")
    expect(page.get_by_text("<script>alert('x')</script>").first).to_be_visible()
    assert dialogs == []
    assert page.locator("b", has_text="Bold").count() == 0


def test_dashboard_over_a_seeded_inventory(page, portal):
    portal.process.manage("seed_demo", "--count", "40")
    log_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    counts = page.get_by_role("region", name="Certificates by state")
    expect(counts.get_by_text("Expiring within 30 days")).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Expiries in the next 12 months"))
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar").count() == 12
    assert (
        sum(
            int(h)
            for h in chart.locator("rect.bar").evaluate_all("bars => bars.map(b => b.getAttribute('height'))")
        )
        > 0
    )
    attention = page.get_by_role("region", name="Needs attention")
    expect(attention.get_by_role("listitem").first).to_be_visible()
    screenshot(page, "dashboard")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "dashboard-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/certificates/?q=Skattekort")
    detail = page.get_by_role("link", name=re.compile("^Skattekort")).first
    detail.click()
    screenshot(page, "certificate-detail-seeded")
