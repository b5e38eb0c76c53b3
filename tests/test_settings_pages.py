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
