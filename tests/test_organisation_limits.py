"""A user limited to some organisations (CVR) sees, counts and acts on only their certificates."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import limit_to_organisations
from certificates.models import Certificate, Organization
from mitid.models import CertificateProfile

from .conftest import SKAT_CVR, SYSTEM_2023, oces3, user_with_role
from .test_certificate_list import make_inventory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_organisations():  # type: ignore[no-untyped-def]
    make_inventory(40)
    ours = Organization.objects.get()
    theirs = Organization.objects.create(cvr="99887766", name="Andet A/S")
    every_other = list(Certificate.objects.order_by("pk").values_list("pk", flat=True))[::2]
    Certificate.objects.filter(pk__in=every_other).update(organization=theirs, cvr=theirs.cvr)
    return ours, theirs


def limited_client(django_user_model, role: str, organisation: Organization) -> Client:  # type: ignore[no-untyped-def]
    user = user_with_role(django_user_model, f"limited-{role.lower()}", role)
    limit_to_organisations(user, [organisation])
    client = Client()
    client.force_login(user)
    return client


def test_lists_pages_and_counts_cover_only_the_users_organisations(django_user_model, two_organisations):
    ours, theirs = two_organisations
    client = limited_client(django_user_model, "Viewer", ours)
    listed = client.get(reverse("certificates:list") + "?page=1").context["page"].count
    assert listed == Certificate.objects.filter(organization=ours).count() < Certificate.objects.count()
    counts = client.get(reverse("home")).context["counts"]
    assert counts == Certificate.objects.filter(organization=ours).state_counts()
    hidden = Certificate.objects.filter(organization=theirs).first()
    for name in ("certificates:detail", "certificates:download-pem", "certificates:renewal-progress"):
        assert client.get(reverse(name, args=[hidden.pk])).status_code == 404, name
    page = client.get(reverse("home")).content.decode()
    assert hidden.get_absolute_url() not in page


def test_a_limited_operator_cannot_act_on_another_organisations_certificate(
    django_user_model, two_organisations
):
    ours, theirs = two_organisations
    client = limited_client(django_user_model, "Operator", ours)
    hidden = Certificate.objects.filter(organization=theirs, state="active").first()
    before = (hidden.auto_renew, hidden.orders.count())
    assert client.post(reverse("certificates:renew", args=[hidden.pk])).status_code == 404
    assert (
        client.post(
            reverse("certificates:renewal-settings", args=[hidden.pk]), {"renew_before_days": 10}
        ).status_code
        == 404
    )
    hidden.refresh_from_db()
    assert (hidden.auto_renew, hidden.orders.count()) == before


def test_a_limited_operator_cannot_import_another_organisations_certificate(django_user_model):
    ours = Organization.objects.create(cvr="11223344", name="Eksempel A/S")
    client = limited_client(django_user_model, "Operator", ours)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("certificates:import"), {"file": SimpleUploadedFile("skat.pem", oces3(SYSTEM_2023))}
    )
    assert response.status_code == 400
    assert "not limited to" in response.content.decode()
    assert not Certificate.objects.exists() and not Organization.objects.filter(cvr=SKAT_CVR).exists()


def test_profiles_are_limited_too(django_user_model, two_organisations):
    ours, theirs = two_organisations
    mine = CertificateProfile.objects.create(name="Min", organization=ours, reference_number="R1")
    other = CertificateProfile.objects.create(name="Anden", organization=theirs, reference_number="R2")
    client = limited_client(django_user_model, "Viewer", ours)
    assert list(client.get(reverse("mitid:profiles")).context["profiles"]) == [mine]
    assert client.get(reverse("mitid:profile-edit", args=[other.pk])).status_code == 404


def test_limits_are_set_on_the_users_page_and_with_add_user(alice_client, two_organisations, tmp_path):
    ours, theirs = two_organisations
    response = alice_client.post(
        reverse("accounts:user-new"),
        {
            "username": "frida",
            "email": "frida@example.dk",
            "is_active": "on",
            "role": "Viewer",
            "organisations": [theirs.pk],
            "password": "frida-has-a-long-password-9",
        },
    )
    assert response.status_code == 302
    frida = django_user("frida")
    assert list(frida.organisation_limit.organizations.all()) == [theirs]
    assert "99887766" in alice_client.get(reverse("accounts:users")).content.decode()

    password_file = tmp_path / "pw"
    password_file.write_text("gustav-has-a-long-password-3\n")
    call_command(
        "add_user",
        "gustav",
        "--role",
        "operator",
        "--organisation",
        ours.cvr,
        "--password-file",
        str(password_file),
    )
    assert list(django_user("gustav").organisation_limit.organizations.all()) == [ours]


def django_user(username: str):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)
