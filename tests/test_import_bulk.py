"""A bundle of many certificates is stored in bulk, with every import behaviour kept: present ones
completed, chains stored, organisations made once, renewals linked, and the whole file or nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import limit_to_organisations
from certificates import services
from certificates.choices import EventKind, LifecycleState, Source
from certificates.models import Certificate, Event, Organization, renewal_due_at
from certificates.services import ImportOutcome, import_certificate_file
from certificates.trust import TrustStore
from certificates.x509 import CertificateFileError, leaves, read_bundle

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
    """10 or 100 new certificates, each of a new organisation (by CVR), with their history: the same
    statements (on PostgreSQL the rows go in by COPY, which is counted too; on SQLite by one prepared
    INSERT each)."""
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 101
    ca = pki.make_ca("Bulk CA")

    def queries(count: int, tag: str, cvr_prefix: str) -> list[str]:
        leaves = [
            pki.make_leaf(ca, pki.name(f"{tag} {i}", O=f"Bulk {tag} {i} A/S // CVR:{cvr_prefix}{i:07d}"))
            for i in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            outcomes = import_certificate_file(ca.pem + b"".join(leaf.pem for leaf in leaves), actor="test")
        assert [o.created for o in outcomes] == [True] * count
        assert Organization.objects.filter(cvr__startswith=cvr_prefix).count() == count
        assert Event.objects.filter(certificate__subject_cn__startswith=f"{tag} ").count() == count
        return [query["sql"] for query in captured.captured_queries]

    small, large = queries(10, "small", "1"), queries(100, "large", "2")
    assert len(small) == len(large)
    if connection.vendor == "postgresql":
        assert sum(sql.startswith("COPY ") for sql in large) == 2  # the certificates, their history


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


def test_the_bulk_insert_stores_what_one_by_one_stores(settings):
    """Every column of a certificate (OCES3: UUID, CVR, policies, addresses, a verified chain) and of
    its history entry is the same whether the bundle's rows went in together (COPY on PostgreSQL) or
    the certificate was added on its own, as when a concurrent import of it forces that path."""
    data = oces3(SYSTEM_2026) + oces3(ISSUING_CA) + oces3(ROOT_CA)
    volatile = {"id", "created_at", "updated_at", "verified_at", "certificate_id"}

    def stored(outcome: ImportOutcome) -> tuple[dict[str, object], dict[str, object]]:
        row = Certificate.objects.filter(pk=outcome.certificate.pk).values().get()
        event = Event.objects.filter(certificate=outcome.certificate.pk).values().get()
        return (
            {k: v for k, v in row.items() if k not in volatile},
            {k: v for k, v in event.items() if k not in volatile},
        )

    (bulk,) = import_certificate_file(data, actor="test", filename="a.pem")
    assert bulk.certificate.chain_verified and bulk.certificate.oces_uuid is not None
    in_bulk = stored(bulk)
    Certificate.objects.all().delete()
    (leaf,) = leaves(read_bundle(data))
    verdict = TrustStore.load().verify(leaf, read_bundle(data).certificates)
    (one,) = [
        services._store(
            leaf,
            verdict=verdict,
            key=None,
            source=Source.IMPORT,
            actor="test",
            event_kind=EventKind.IMPORTED,
            message="Imported from “%(filename)s”.",
            detail={"filename": "a.pem"},
        )
    ]
    assert stored(one) == in_bulk


def test_a_certificate_stored_meanwhile_by_another_import_is_completed_not_duplicated(settings, monkeypatch):
    """Another import stores one of the bundle's certificates between this one's look-up and its bulk
    insert: the insert's unique violation (from COPY on PostgreSQL) rolls back to the savepoint, and the
    bundle is stored one by one, the other import's certificate kept as present."""
    settings.TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 50
    ca = pki.make_ca("Race CA")
    leaves_of_ca = [pki.make_leaf(ca, pki.name(f"race {i}", O="Race A/S")) for i in range(5)]
    (meanwhile,) = import_certificate_file(ca.pem + leaves_of_ca[0].pem, actor="other")
    monkeypatch.setattr(services.Certificate.objects, "in_bulk", lambda *args, **kwargs: {})  # not seen yet

    outcomes = import_certificate_file(ca.pem + b"".join(leaf.pem for leaf in leaves_of_ca), actor="test")

    assert [o.created for o in outcomes] == [False, True, True, True, True]
    assert outcomes[0].certificate.pk == meanwhile.certificate.pk
    assert Certificate.objects.filter(subject_cn__startswith="race ").count() == 5
    assert (
        Event.objects.filter(certificate__subject_cn__startswith="race ", kind=EventKind.IMPORTED).count()
        == 5
    )
