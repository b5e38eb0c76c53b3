"""A bundle of many certificates is stored in bulk, with every import behaviour kept: present ones
completed, chains stored, organisations made once, renewals linked, and the whole file or nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import limit_to_organisations
from certificates.choices import EventKind, LifecycleState
from certificates.models import Certificate, Event, Organization, renewal_due_at
from certificates.services import import_certificate_file
from certificates.x509 import CertificateFileError

from . import pki
from .conftest import ISSUING_CA, ROOT_CA, SKAT_CVR, SYSTEM_2023, SYSTEM_2026, oces3, user_with_role

pytestmark = pytest.mark.django_db


def bundle(ca: pki.Issued, count: int, tag: str) -> bytes:
    leaves = [pki.make_leaf(ca, pki.name(f"{tag} {i}", O="Bulk A/S")) for i in range(count)]
    return ca.pem + b"".join(leaf.pem for leaf in leaves)


def test_a_bundle_stores_each_leaf_once_with_its_chain_history_and_renewal_links(settings):
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 50
    ca = pki.make_ca("Bulk CA")
    (present,) = import_certificate_file(oces3(SYSTEM_2023), actor="test")
    data = (
        bundle(ca, 12, "bulk") + oces3(SYSTEM_2023) + oces3(SYSTEM_2026) + oces3(ISSUING_CA) + oces3(ROOT_CA)
    )

    outcomes = import_certificate_file(data, actor="test", filename="all.pem")

    assert len(outcomes) == 14
    assert [o.created for o in outcomes].count(False) == 1  # the 2023 certificate was already there
    assert next(o for o in outcomes if not o.created).certificate.pk == present.certificate.pk
    renewal = next(o for o in outcomes if o.created and o.renewal_of is not None)
    assert renewal.renewal_of.pk == present.certificate.pk  # type: ignore[union-attr]
    assert Certificate.objects.get(pk=present.certificate.pk).state == LifecycleState.SUPERSEDED
    assert Organization.objects.filter(cvr=SKAT_CVR).count() == 1
    for outcome in outcomes:
        if outcome.created:
            stored = Certificate.objects.get(pk=outcome.certificate.pk)
            assert stored.renew_at == renewal_due_at(stored.not_before, stored.not_after, stored.renew_before)
            assert Event.objects.filter(certificate=stored, kind=EventKind.IMPORTED).count() == 1
    bulk = Certificate.objects.get(subject_cn="bulk 3")
    assert bulk.chain_pem == ca.pem.decode() and bulk.chain_verified is False
    assert Event.objects.get(certificate=bulk, kind=EventKind.IMPORTED).detail == {
        "with_private_key": False,
        "filename": "all.pem",
    }


def test_the_queries_of_a_bundle_do_not_grow_with_its_leaves(settings):
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 100
    ca = pki.make_ca("Bulk CA")

    def queries(count: int, tag: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(import_certificate_file(bundle(ca, count, tag), actor="test")) == count
        return len(captured)

    # (Both within one INSERT batch: SQLite takes about 20 certificates per INSERT, PostgreSQL 500.)
    assert queries(4, "small") == queries(20, "large")


def test_a_refusal_after_the_bulk_insert_leaves_nothing_of_the_file(settings, django_user_model):
    """A user limited to one organisation imports a file that also holds another's certificate: the
    refusal comes after the rows were inserted, and takes all of them back."""
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 50
    ours = Organization.objects.create(cvr="11223344", name="Vores A/S")
    user = user_with_role(django_user_model, "limited-operator", "Operator")
    limit_to_organisations(user, [ours])
    before = (Certificate.objects.count(), Event.objects.count(), Organization.objects.count())
    with pytest.raises(CertificateFileError):
        import_certificate_file(bundle(pki.make_ca(), 8, "x") + oces3(SYSTEM_2026), actor=user)
    assert (Certificate.objects.count(), Event.objects.count(), Organization.objects.count()) == before


def test_a_short_renewal_window_is_warned_about_in_bulk_too(settings):
    settings.TRUSTVIEW_SWEEP_SECONDS = 86400  # longer than the leaves' renewal window (a third of a day)
    ca = pki.make_ca()
    now = dt.datetime.now(dt.UTC)
    short = [
        pki.make_leaf(ca, pki.name(f"short {i}"), not_after=now + dt.timedelta(minutes=30)) for i in range(3)
    ]
    outcomes = import_certificate_file(b"".join(leaf.pem for leaf in short), actor="test")
    assert all(o.warning for o in outcomes)
    assert Event.objects.filter(kind=EventKind.WARNING).count() == 3
