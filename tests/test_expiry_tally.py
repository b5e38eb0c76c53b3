"""ExpiryTally (kept by database triggers) gives the dashboard the same numbers as counting the
certificates, after every way a certificate is written, for every viewer's scope, and as time passes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from certificates.choices import LifecycleState
from certificates.dashboard import counts_and_chart, expiry_chart
from certificates.models import Certificate, ExpiryTally, ExpiryWindow, Organization, _tally_days
from certificates.renewal import mark_blocked
from certificates.services import import_certificate_file

from .conftest import SYSTEM_2023, SYSTEM_2026, oces3

pytestmark = pytest.mark.django_db

CARDS = ["valid", "expiring", "critical", "lapsed", "blocked"]


def certificate(organization: Organization | None, not_after: dt.datetime, **fields: object) -> Certificate:
    serial = uuid.uuid4().hex.upper()
    values: dict[str, object] = {
        "organization": organization,
        "subject_cn": f"system {serial[:6]}",
        "subject_dn": "CN=system",
        "issuer_cn": "Test CA",
        "issuer_dn": "CN=Test CA",
        "serial_number": serial,
        "fingerprint_sha256": serial * 2,
        "not_before": not_after - dt.timedelta(days=700),
        "not_after": not_after,
        "key_algorithm": "EC",
        "signature_algorithm": "ECDSA with SHA-256",
        "pem": "-----BEGIN CERTIFICATE-----\n...",
    }
    values.update(fields)
    return Certificate(**values)


def assert_tally_counts(now: dt.datetime) -> None:
    """The cards and the chart from the tally equal the certificates counted one by one (here, in
    Python, from the rows), for everyone and for each organisation's limited viewer."""
    rows = list(Certificate.objects.values_list("organization_id", "state", "not_before", "not_after"))
    soon, critical = now + dt.timedelta(days=30), now + dt.timedelta(days=14)
    bounds = expiry_chart(now, Certificate.objects.none())["bars"]
    months = [timezone.make_aware(dt.datetime.combine(bar.month, dt.time.min)) for bar in bounds]
    scopes: list[tuple[int | None, object]] = [(None, None)]
    for pk in Organization.objects.values_list("pk", flat=True):
        scopes.append((pk, Organization.objects.filter(pk=pk)))
    for scope, organisations in scopes:
        mine = [row for row in rows if scope is None or row[0] == scope]
        current = [after for _, state, _, after in mine if state == "active" and after > now]
        started = [after for _, state, before, after in mine if state == "active" and before <= now]
        expected = {
            "valid": sum(after > soon for after in started),
            "expiring": sum(now < after <= soon for after in started),
            "critical": sum(now < after <= critical for after in started),
            "lapsed": sum(state == "active" and after <= now for _, state, _, after in mine),
            "blocked": sum(state == "blocked" for _, state, _, _ in mine),
        }
        certificates = Certificate.objects.all()
        if organisations is not None:
            certificates = certificates.filter(organization__in=organisations)
        tallied, chart = counts_and_chart(now, certificates, organisations)  # type: ignore[arg-type]
        assert {key: tallied[key] for key in expected} == expected, scope
        bars = chart["bars"]
        for index, bar in enumerate(bars[:-1]):
            start, end = months[index], months[index + 1]
            assert bar.count == sum(start <= after < end for after in current), bar.month
    assert sum(expected.values()) > 0  # the checks above compared something


def test_the_tally_equals_a_direct_count_after_every_write_path():
    # Late in the UTC day, so the windows' edges fall on partial days and the local month starts at 23:00.
    now = dt.datetime(2026, 11, 30, 22, 30, 0, 250, tzinfo=dt.UTC)
    with time_machine.travel(now, tick=False):
        north = Organization.objects.create(cvr="11111111", name="Nord A/S")
        south = Organization.objects.create(cvr="22222222", name="Syd A/S")
        local_month = dt.datetime(2027, 1, 1, tzinfo=timezone.get_current_timezone())
        midnight = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
        soon, critical = now + dt.timedelta(days=30), now + dt.timedelta(days=14)
        edges = [now, now + dt.timedelta(microseconds=1), soon, soon + dt.timedelta(microseconds=1), critical]
        edges += [midnight, midnight - dt.timedelta(microseconds=1), local_month, now - dt.timedelta(days=40)]
        # bulk_create: one INSERT for many rows (the import's and the seeder's way)
        Certificate.objects.bulk_create(
            [certificate(north, when) for when in edges]
            + [certificate(south, now + dt.timedelta(days=d, hours=d)) for d in range(-20, 400, 9)]
            + [certificate(None, now + dt.timedelta(days=3)), certificate(south, now - dt.timedelta(days=3))]
            + [certificate(north, now + dt.timedelta(days=5), not_before=now + dt.timedelta(days=1))]
            + [certificate(south, now + dt.timedelta(days=90), state=LifecycleState.BLOCKED)]
        )
        assert_tally_counts(now)

        # The import (as issuing stores what the CA returned): a lapsed OCES certificate, then its
        # renewal, which supersedes it.
        import_certificate_file(oces3(SYSTEM_2023))
        assert_tally_counts(now)
        import_certificate_file(oces3(SYSTEM_2026))
        assert Certificate.objects.filter(state=LifecycleState.SUPERSEDED).count() == 1
        assert_tally_counts(now)

        # A renewal superseding its certificate (queryset update), blocking, saving a changed row,
        # moving a certificate to another organisation, deleting one and many.
        first, second, third, fourth = Certificate.objects.current(now).filter(organization=south)[:4]
        Certificate.objects.filter(pk=first.pk).update(state=LifecycleState.SUPERSEDED)
        mark_blocked(second, None, order_error="blocked", message="Blocked.")
        third.not_after = now + dt.timedelta(days=2)
        third.save()
        Certificate.objects.filter(pk=fourth.pk).update(organization=north)
        Certificate.objects.filter(organization=None).delete()
        assert_tally_counts(now)
        Certificate.objects.filter(pk=first.pk).get().delete()
        Certificate.objects.filter(organization=south, not_after__lt=now + dt.timedelta(days=60)).delete()
        assert_tally_counts(now)

        # Folding the appended rows changes no count, and leaves one row per scope, state and day.
        appended = ExpiryTally.objects.filter(settled=False).count()
        ExpiryTally.settle()
        assert appended and not ExpiryTally.objects.filter(settled=False).exists()
        assert_tally_counts(now)
        ExpiryTally.settle()  # nothing to fold: nothing changes
        assert_tally_counts(now)

    # Time passes: expiring certificates lapse, valid ones become expiring, with no write at all.
    for later in [now + dt.timedelta(days=4, hours=3), now + dt.timedelta(days=45, minutes=7)]:
        with time_machine.travel(later, tick=False):
            assert_tally_counts(later)


def test_the_tally_triggers_fire_on_every_change_of_state_expiry_or_organisation():
    organisation = Organization.objects.create(cvr="33333333", name="Øst A/S")
    row = certificate(organisation, timezone.now() + dt.timedelta(days=100))
    row.save()

    def tallied() -> dict[tuple[int, str, dt.date], int]:
        totals: dict[tuple[int, str, dt.date], int] = {}
        for tally in ExpiryTally.objects.all():
            key = (tally.scope, tally.state, tally.day)
            totals[key] = totals.get(key, 0) + tally.certificates
        return {key: n for key, n in totals.items() if n}

    day = row.not_after.astimezone(dt.UTC).date()
    assert tallied() == {(0, "active", day): 1, (organisation.pk, "active", day): 1}
    row.auto_renew = False  # a change the tally does not count by adds nothing
    row.save()
    with connection.cursor() as cursor:  # nor does an UPDATE that leaves the counted columns as they were
        cursor.execute("UPDATE certificates_certificate SET state = state")
    assert ExpiryTally.objects.count() == 2
    Certificate.objects.filter(pk=row.pk).update(organization=None, state=LifecycleState.BLOCKED)
    assert tallied() == {(0, "blocked", day): 1}
    row.delete()
    assert tallied() == {}


def test_any_window_counts_as_the_rows_say_within_a_day_across_days_and_where_windows_meet():
    """count_by_expiry for windows other than the dashboard's: inside one UTC day (no whole day to sum),
    across midnight, and two windows sharing the edge between them."""
    day = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    Certificate.objects.bulk_create(
        [certificate(None, day + dt.timedelta(hours=hours)) for hours in (-30, -1, 0, 3, 5, 11, 23, 26, 50)]
    )
    windows = {
        "morning": ExpiryWindow(
            LifecycleState.ACTIVE, day + dt.timedelta(hours=2), day + dt.timedelta(hours=6)
        ),
        "then": ExpiryWindow(
            LifecycleState.ACTIVE, day + dt.timedelta(hours=6), day + dt.timedelta(hours=27)
        ),
        "around": ExpiryWindow(
            LifecycleState.ACTIVE, day - dt.timedelta(hours=2), day + dt.timedelta(hours=1)
        ),
        "blocked": ExpiryWindow(LifecycleState.BLOCKED, day, day + dt.timedelta(hours=1)),
    }
    expected = {
        name: Certificate.objects.filter(window.range(), state=window.state).count()
        for name, window in windows.items()
    }
    assert expected == {"morning": 2, "then": 3, "around": 2, "blocked": 0}
    assert Certificate.objects.count_by_expiry({"morning": windows["morning"]}) == {"morning": 2}
    assert Certificate.objects.count_by_expiry(windows) == expected
    ExpiryTally.settle()
    assert Certificate.objects.count_by_expiry(windows) == expected


def test_windows_cut_anywhere_in_a_day_count_as_the_rows_say():
    """Each bound inside a day counts the shorter part of that day from the certificates (before it, or
    after it with the day summed): windows starting or ending early, late (as a Copenhagen midnight,
    23:00 UTC) and anywhere between, inside one day or across several, unsettled and settled."""
    day = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    hours = [-30, -13, -1, 0, 1, 3, 5, 11, 12, 13, 18, 22.5, 23, 23.5, 26, 35, 47, 50]
    Certificate.objects.bulk_create([certificate(None, day + dt.timedelta(hours=h)) for h in hours])
    bounds = [
        day + dt.timedelta(hours=h) for h in (-25, -12.5, -1, 0, 2, 11.5, 12, 12.5, 14, 20, 23, 24, 36.25)
    ]
    windows = {
        f"{start:%d %H:%M}-{end:%d %H:%M}": ExpiryWindow(LifecycleState.ACTIVE, start, end)
        for start in bounds
        for end in bounds
        if start < end
    }
    windows["open start"] = ExpiryWindow(LifecycleState.ACTIVE, None, day + dt.timedelta(hours=20))
    windows["open end"] = ExpiryWindow(LifecycleState.ACTIVE, day + dt.timedelta(hours=14), None)
    expected = {
        name: sum(
            (window.start is None or window.start <= day + dt.timedelta(hours=h))
            and (window.end is None or day + dt.timedelta(hours=h) < window.end)
            for h in hours
        )
        for name, window in windows.items()
    }
    assert expected["05 14:00-05 23:00"] == 2 and expected["04 23:00-06 12:15"] == 14
    assert Certificate.objects.count_by_expiry(windows) == expected
    ExpiryTally.settle()
    assert Certificate.objects.count_by_expiry(windows) == expected
    # What makes it cheap: no part counted from the certificates is longer than half a day.
    for window in windows.values():
        _, parts = _tally_days(window.start, window.end)
        assert all(end - start <= dt.timedelta(hours=12) for start, end, _ in parts), window
