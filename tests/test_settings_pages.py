"""Notification settings and certificate profiles, edited in the portal."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from certificates import alerts
from certificates.models import NotificationSettings, Organization
from mitid.models import CertificateProfile

pytestmark = pytest.mark.django_db
NOTIFICATIONS = reverse("certificates:notifications")


def test_notification_settings_override_the_environment_and_drive_the_alerts(alice_client, settings):
    settings.TRUSTVIEW_ALERT_EMAILS, settings.TRUSTVIEW_ALERT_THRESHOLDS_DAYS = ["env@example.dk"], [30, 14]
    page = alice_client.get(NOTIFICATIONS).content.decode()
    assert "env@example.dk" in page  # in effect now, from the environment
    response = alice_client.post(
        NOTIFICATIONS,
        {"recipients": "pki@example.dk\nops@example.dk, pki@example.dk", "thresholds_days": "7, 45,21"},
        follow=True,
    )
    assert "Notification settings saved." in response.content.decode()
    row = NotificationSettings.load()
    assert row.recipients == ["pki@example.dk", "ops@example.dk"]
    assert row.thresholds_days == [45, 21, 7]
    assert alerts.recipients() == ["pki@example.dk", "ops@example.dk"]
    assert alerts.thresholds() == [45, 21, 7]

    from .test_alerts import NOW, certificate

    certificate("configured", 40.5)
    alerts.send_expiry_alerts(NOW)
    (message,) = mail.outbox
    assert message.to == ["pki@example.dk", "ops@example.dk"]
    assert "expires in 40 days" in message.subject and "Critical" not in message.subject

    alice_client.post(NOTIFICATIONS, {"recipients": "", "thresholds_days": ""})
    assert alerts.recipients() == ["env@example.dk"] and alerts.thresholds() == [30, 14]


def test_bad_notification_settings_are_explained_and_nothing_changes(alice_client):
    response = alice_client.post(
        NOTIFICATIONS, {"recipients": "pki@example.dk\nnot-an-address", "thresholds_days": "30, soon"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "Not an e-mail address: not-an-address." in page
    assert "Enter whole numbers of days from 1 to 365, separated by commas." in page
    assert NotificationSettings.load().recipients == []


def test_profiles_are_listed_created_and_edited_with_their_organisation(alice_client):
    response = alice_client.post(
        reverse("mitid:profile-new"),
        {
            "name": "Lønsystem",
            "type": "system",
            "environment": "production",
            "reference_number": "1234 5678 9012",
            "contact_name": "Mette Hansen",
            "contact_email": "mette@example.dk",
            "cvr": "12345678",
            "organisation_name": "Eksempel A/S",
            "renewal_enabled": "yes",
        },
        follow=True,
    )
    assert "Profile “Lønsystem” saved." in response.content.decode()
    profile = CertificateProfile.objects.get()
    assert profile.reference_number == "123456789012" and profile.organization.cvr == "12345678"
    assert Organization.objects.get(cvr="12345678").renewal_enabled is True
    listing = alice_client.get(reverse("mitid:profiles")).content.decode()
    for text in ["Lønsystem", "Eksempel A/S", "CVR 12345678", "Production", "123456789012", "Mette Hansen"]:
        assert text in listing

    edit = reverse("mitid:profile-edit", args=[profile.pk])
    form = alice_client.get(edit).content.decode()
    assert 'value="12345678"' in form and '<option value="yes" selected>' in form
    alice_client.post(
        edit,
        {
            "name": "Lønsystem 2",
            "type": "system",
            "environment": "production",
            "reference_number": "123456789012",
            "cvr": "12345678",
            "organisation_name": "Eksempel A/S",
            "renewal_enabled": "no",
        },
    )
    profile.refresh_from_db()
    assert profile.name == "Lønsystem 2" and profile.organization.renewal_enabled is False


def test_profile_errors_are_explained(alice_client):
    CertificateProfile.objects.create(name="First", environment="test", reference_number="111122223333")
    response = alice_client.post(
        reverse("mitid:profile-new"),
        {
            "name": "Second",
            "type": "system",
            "environment": "test",
            "reference_number": "1111 2222 3333",
            "cvr": "123",
        },
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "A CVR number has 8 digits." in page
    assert "Another profile has this reference number in this environment." in page
    assert CertificateProfile.objects.count() == 1


BANNER = "Alerts reach nobody"


def test_administrators_see_a_banner_on_every_page_while_alerts_reach_nobody(
    alice_client, olga_client, vera_client, settings
):
    settings.TRUSTVIEW_ALERT_EMAILS = []  # and no superuser with an address: nobody
    for url in (reverse("home"), reverse("certificates:list"), NOTIFICATIONS):
        page = alice_client.get(url).content.decode()
        assert BANNER in page and f'href="{NOTIFICATIONS}"' in page, url
    for client in (olga_client, vera_client):  # they cannot change it, so it is not theirs to fix
        assert BANNER not in client.get(reverse("home")).content.decode()
    alice_client.post(NOTIFICATIONS, {"recipients": "pki@example.dk", "thresholds_days": ""})
    assert BANNER not in alice_client.get(reverse("home")).content.decode()


def test_send_test_e_mail_says_to_whom_it_went(alice_client, settings):
    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk", "ops@example.dk"]
    response = alice_client.post(reverse("certificates:notifications-test"), follow=True)
    assert "A test e-mail was sent to pki@example.dk, ops@example.dk." in response.content.decode()
    (message,) = mail.outbox
    assert message.subject == "[trustview] Test e-mail" and message.to == ["pki@example.dk", "ops@example.dk"]
    assert "sent by alice" in message.body


def test_send_test_e_mail_with_nobody_to_send_to_says_so(alice_client, settings):
    settings.TRUSTVIEW_ALERT_EMAILS = []
    response = alice_client.post(reverse("certificates:notifications-test"), follow=True)
    assert "Nobody receives alerts: add a recipient first." in response.content.decode()
    assert not mail.outbox


def test_send_test_e_mail_reports_the_mail_server_error_without_its_secrets(alice_client, settings):
    from .support.processes import free_port

    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "mailer", "smtp-secret-pw-42"
    settings.EMAIL_TIMEOUT = 5
    response = alice_client.post(reverse("certificates:notifications-test"), follow=True)
    page = response.content.decode()
    assert "The test e-mail was not sent: ConnectionRefusedError" in page
    assert "smtp-secret-pw-42" not in page and "mailer" not in page


def test_the_test_e_mail_arrives_at_a_real_smtp_server(alice_client, settings):
    from .support.processes import running_smtp_server
    from .test_alerts import Inbox

    settings.TRUSTVIEW_ALERT_EMAILS = ["pki@example.dk"]
    inbox = Inbox()
    with running_smtp_server(inbox) as port:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        alice_client.post(reverse("certificates:notifications-test"))
    (message,) = inbox.messages
    assert message["Subject"] == "[trustview] Test e-mail" and message["To"] == "pki@example.dk"


def test_operators_set_a_certificates_contacts_and_viewers_only_see_them(olga_client, vera_client):
    from .test_alerts import certificate

    cert = certificate("team-owned", 100)
    url = reverse("certificates:contacts", args=[cert.pk])
    page = olga_client.get(cert.get_absolute_url()).content.decode()
    assert "Change contacts" in page
    response = olga_client.post(
        url, {"contacts": "team@example.dk, owner@example.dk\nteam@example.dk"}, follow=True
    )
    assert "Contacts saved." in response.content.decode()
    assert sorted(cert.contacts.values_list("email", flat=True)) == ["owner@example.dk", "team@example.dk"]
    assert (
        cert.events.filter(kind="contacts_changed").get().text
        == "Contacts: team@example.dk, owner@example.dk."
    )
    viewer_page = vera_client.get(cert.get_absolute_url()).content.decode()
    assert "owner@example.dk" in viewer_page and "Change contacts" not in viewer_page
    assert vera_client.post(url, {"contacts": ""}).status_code == 403
    bad = olga_client.post(url, {"contacts": "not-an-address"}, follow=True).content.decode()
    assert "Not an e-mail address: not-an-address." in bad
    assert cert.contacts.count() == 2
