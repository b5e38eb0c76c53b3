"""Django admin has every model, and the history cannot be edited there."""

from __future__ import annotations

import pytest
from django.urls import reverse

from certificates.models import Certificate, Event, Organization
from certificates.services import import_certificate_file

from .conftest import SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db


def test_every_model_of_the_portal_is_in_the_admin():
    from django.apps import apps
    from django.contrib import admin

    for label in ("certificates", "mitid"):
        for model in apps.get_app_config(label).get_models():
            if model._meta.auto_created:
                continue  # many-to-many tables
            assert admin.site.is_registered(model), model.__name__


def test_admin_pages_for_every_model(admin_client):
    import_certificate_file(oces3(SYSTEM_2026), actor="test")
    for model in [Organization, Certificate, Event]:
        opts = model._meta
        assert (
            admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code
            == 200
        )
        obj = model.objects.first()
        assert (
            admin_client.get(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            ).status_code
            == 200
        )


def test_events_are_append_only():
    (outcome,) = import_certificate_file(oces3(SYSTEM_2026), actor="test")
    event = Event.objects.get(certificate=outcome.certificate)
    event.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
