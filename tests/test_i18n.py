"""Danish and English: a complete catalogue, compiled, chosen by the user or taken from the browser."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from certificates import alerts
from certificates.services import import_certificate_file

from .conftest import SYSTEM_2023, SYSTEM_2026, oces3

LOCALE = Path(__file__).resolve().parents[1] / "locale" / "da" / "LC_MESSAGES"
PLACEHOLDERS = re.compile(r"%\([a-z_]+\)[sd]|<[^>]+>")


def catalogue() -> list[tuple[str, list[str], bool]]:
    """(msgid, msgstrs, fuzzy) for every entry of the Danish .po file, header left out."""
    entries = []
    for block in (LOCALE / "django.po").read_text(encoding="utf-8").split("\n\n"):
        ids = _strings(r'^msgid(?:_plural)? ((?:".*"\n?)+)', block)
        if ids and ids[0]:
            translations = _strings(r'^msgstr(?:\[\d\])? ((?:".*"\n?)+)', block)
            entries.append((ids[-1], translations, "#, fuzzy" in block))
    return entries


def _strings(pattern: str, block: str) -> list[str]:
    """The joined, unescaped strings of one keyword of a .po entry."""
    return [
        "".join(re.findall(r'"(.*)"', chunk)).encode().decode("unicode_escape").encode("latin-1").decode()
        for chunk in re.findall(pattern, block, re.M)
    ]


def test_every_message_is_translated_with_its_placeholders():
    entries = catalogue()
    assert len(entries) > 300
    for msgid, translations, fuzzy in entries:
        assert not fuzzy, msgid
        for text in translations:
            assert text, f"untranslated: {msgid}"
            assert sorted(PLACEHOLDERS.findall(text)) == sorted(PLACEHOLDERS.findall(msgid)), msgid


def test_the_compiled_catalogue_is_up_to_date():
    with (LOCALE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for msgid, translations, _fuzzy in catalogue():
        if len(translations) == 1:
            assert compiled.gettext(msgid) == translations[0], f"run compilemessages: {msgid}"


@pytest.mark.django_db
def test_the_browser_language_decides_until_the_user_chooses(alice_client):
    danish = alice_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="da-DK,da;q=0.9,en;q=0.5")
    page = danish.content.decode()
    assert '<html lang="da"' in page and "<h1>Overblik</h1>" in page and "Certifikater" in page
    english = alice_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-GB")
    assert "<h1>Dashboard</h1>" in english.content.decode()
    alice_client.post(reverse("set_language"), {"language": "da", "next": "/"})
    chosen = alice_client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()
    assert "<h1>Overblik</h1>" in chosen  # the choice wins over the browser


@pytest.mark.django_db
def test_sentences_statuses_and_history_in_danish(alice_client):
    alice_client.post(reverse("set_language"), {"language": "da"})
    response = alice_client.post(
        reverse("certificates:import"), {"file": SimpleUploadedFile("note.txt", b"hello")}, follow=True
    )
    assert "Filen er ikke et certifikat." in response.content.decode()
    import_certificate_file(oces3(SYSTEM_2023), actor="test", filename="gammel.pem")
    (renewed,) = import_certificate_file(oces3(SYSTEM_2026), actor="test", filename="ny.pem")
    old_page = alice_client.get(renewed.renewal_of.get_absolute_url()).content.decode()
    assert "Udløbet" in old_page and "Forny nu" in old_page and "Gælder ikke, så længe" in old_page
    assert "Importeret fra “gammel.pem”." in old_page  # the history, in the reader's language
    assert "Certifikatet er udløbet og kan derfor ikke fornyes" in old_page


@pytest.mark.django_db
def test_alert_emails_in_the_configured_language(settings, admin_user):
    from .test_alerts import NOW, certificate

    settings.TRUSTVIEW_EMAIL_LANGUAGE = "da"
    certificate("Lønsystem", 10.5)
    alerts.send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert message.subject == "[trustview] Kritisk: certifikat udløber om 10 dage: Lønsystem"
    assert "Det skal du gøre:" in message.body
    assert "Det skal du gøre:" in message.alternatives[0][0]
