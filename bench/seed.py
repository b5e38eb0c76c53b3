"""Seed N synthetic certificates quickly with PostgreSQL's COPY (no crypto per row).

The spread is what a large inventory looks like: expiries over three years (one in the past, two to
come), many organisations, most expired certificates superseded by their renewal, a few blocked and a
few lapsed, a private key for about 40% (the rest monitor-only), so that about 1% are due for renewal;
one history entry per certificate plus the renewals' entries; renewal orders that were issued, failed
(recently and long ago, some "not enabled") and a few still open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.utils import timezone
from psycopg.types.json import Jsonb

from certificates.choices import EventKind, LifecycleState, OrderKind, OrderState, Source
from certificates.models import (
    DEFAULT_RENEW_BEFORE,
    RENEWAL_NOT_ENABLED,
    Certificate,
    Event,
    Order,
    Organization,
    renewal_due_at,
)

PLACES = [
    "Aarhus", "Odense", "Aalborg", "Esbjerg", "Randers", "Kolding", "Horsens", "Vejle", "Roskilde",
    "Herning", "Silkeborg", "Næstved", "Fredericia", "Viborg", "Køge", "Holstebro", "Slagelse", "Hillerød",
]  # fmt: skip
KINDS = ["Kommune", "Region", "Forsyning", "Hospital", "Skole", "Bank", "Hosting", "Rådgivning", "A/S", "ApS"]
SYSTEMS = [
    "Lønsystem", "webshop", "API gateway", "e-Boks", "NemKonto", "SFTP", "Fakturering", "Journal",
    "Borgerservice", "Indberetning", "Booking", "Integration", "Datavarehus", "Mail relay", "VPN",
]  # fmt: skip
ISSUER_CN = "Den Danske Stat OCES udstedende-CA 1"
ISSUER_DN = f"CN={ISSUER_CN},O=Den Danske Stat,C=DK"


@dataclass
class Seeded:
    """What the measurements need to know about the seeded inventory."""

    certificates: int
    organisations: int
    events: int
    orders: int
    sample_fingerprint: str
    sample_cvr: str
    sample_org_name: str
    sample_cn_words: str
    sample_common_word: str  # a place: in many common names and organisations' names
    sample_detail_pk: int


def copy_rows(model: type[models.Model], rows: Iterable[dict[str, Any]], *, with_id: bool = True) -> int:
    """COPY rows (dicts by column name) into the model's table, as they come (a generator keeps memory
    flat); a column a row leaves out gets the field's default, so fields added to the model later need no
    change here. Ids come from the rows (`with_id`) or from the table's sequence."""
    fields = [f for f in model._meta.concrete_fields if with_id or f.column != "id"]
    columns = [str(f.column) for f in fields]
    defaults = {f.column: f.get_db_prep_save(f.get_default(), connection) for f in fields if f.column != "id"}
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    table = connection.ops.quote_name(str(model._meta.db_table))
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        with raw.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] if c in row else defaults[c] for c in columns])
                count += 1
    return count


def reset_sequence(model: type[models.Model]) -> None:
    table = connection.ops.quote_name(str(model._meta.db_table))
    sequence_max = f"SELECT COALESCE(MAX(id), 1) FROM {table}"  # noqa: S608 (a model's own table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({sequence_max}))", [model._meta.db_table]
        )


CHUNK = 20_000  # certificates made and copied at a time: memory stays flat at any BENCH_CERTIFICATES


def seed(total: int, pem: str, seed_value: int = 12) -> Seeded:
    """Seed `total` certificates with their organisations, history and orders; returns samples to query.

    Rows are made and copied a chunk at a time; only the ids of the current certificates that hold a key
    (for the failed and open orders at the end) are kept across chunks."""
    rng = random.Random(seed_value)  # noqa: S311 (synthetic data, repeatable on purpose)
    now = timezone.now()
    organisations = max(20, total // 50)
    org_rows = []
    org_names: list[str] = []
    for index in range(organisations):
        name = f"{rng.choice(PLACES)} {rng.choice(KINDS)} {index}"
        org_names.append(name)
        org_rows.append(
            {
                "id": index + 1,
                "cvr": f"{10000000 + index * 7:08d}",
                "name": name,
                "renewal_enabled": rng.random() < 0.9,
                "created_at": now,
            }
        )
    copy_rows(Organization, org_rows)
    reset_sequence(Organization)

    empty_json = Jsonb([])
    ocsp_json = Jsonb(["http://ocsp.example.invalid"])
    current: list[int] = []  # active, unexpired, with a key: where failed and open renewals go
    sample: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    event_count = order_count = 0
    for chunk_start in range(1, total + 1, CHUNK):
        certificates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        for pk in range(chunk_start, min(total, chunk_start + CHUNK - 1) + 1):
            org = rng.randrange(organisations)
            cvr, org_name = org_rows[org]["cvr"], org_names[org]
            # Three years of expiries: one behind, two ahead; OCES3 system certificates live about 3 years.
            not_after = now + dt.timedelta(days=rng.uniform(-365, 730))
            not_before = not_after - dt.timedelta(days=3 * 365)
            expired = not_after <= now
            roll = rng.random()
            if expired:
                state = LifecycleState.SUPERSEDED if roll < 0.7 else LifecycleState.ACTIVE
            else:
                state = LifecycleState.SUPERSEDED if roll < 0.02 else LifecycleState.ACTIVE
            if roll > 0.99:
                state = LifecycleState.BLOCKED
            has_key = rng.random() < 0.4
            fingerprint = hashlib.sha256(pk.to_bytes(8, "big")).hexdigest().upper()
            cn = f"{rng.choice(SYSTEMS)} {org_name} {pk % 1000:03d}"
            created = not_before + dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
            row = {
                "id": pk,
                "organization_id": org + 1,
                "subject_cn": cn,
                "subject_dn": f"CN={cn},O={org_name},C=DK",
                "subject_organization": org_name,
                "issuer_cn": ISSUER_CN,
                "issuer_dn": ISSUER_DN,
                "serial_number": f"{rng.getrandbits(128):032X}",
                "fingerprint_sha256": fingerprint,
                "not_before": not_before,
                "not_after": not_after,
                "key_algorithm": "RSA",
                "key_size": 3072,
                "signature_algorithm": "sha256WithRSAEncryption",
                "is_ca": False,
                "subject_key_id": f"{rng.getrandbits(160):040X}",
                "authority_key_id": "",
                "subject_alt_names": empty_json,
                "policies": empty_json,
                "ocsp_urls": ocsp_json,
                "crl_urls": empty_json,
                "cvr": cvr,
                "oces_uuid": uuid.UUID(int=rng.getrandbits(128), version=4),
                "environment": "production" if rng.random() < 0.8 else "test",
                "oces_type": "organisation",
                "pem": pem,
                "chain_pem": "",
                "private_key_encrypted": "bench-dummy-key" if has_key else "",
                "chain_verified": None,
                "trust_root_id": None,
                "verification_error": "",
                "verified_at": None,
                "source": Source.MITID if has_key else Source.IMPORT,
                "state": state,
                "auto_renew": rng.random() < 0.95,
                "renew_before": DEFAULT_RENEW_BEFORE,
                "renew_at": renewal_due_at(not_before, not_after, DEFAULT_RENEW_BEFORE),
                "renewed_from_id": None,
                "created_at": created,
                "updated_at": created,
            }
            certificates.append(row)
            events.append(_event(pk, EventKind.IMPORTED, "Imported.", created))
            # Renewal chains: a superseded certificate is replaced by the next one, with the issued order
            # and the history entry a renewal leaves.
            if previous is not None and previous["state"] == LifecycleState.SUPERSEDED:
                row["renewed_from_id"] = previous["id"]
                orders.append(
                    _order(
                        rng, previous["id"], OrderState.ISSUED, created, completed=created, new_certificate=pk
                    )
                )
                events.append(_event(previous["id"], EventKind.RENEWED, "Renewed.", created))
            previous = {"id": pk, "state": state}
            if state == LifecycleState.ACTIVE and not expired and has_key:
                current.append(pk)
                if sample is None and pk > total // 2:
                    sample = row
        copy_rows(Certificate, certificates)
        event_count += copy_rows(Event, events, with_id=False)
        order_count += copy_rows(Order, orders, with_id=False)

    # Failed and open renewals among the current certificates that hold a key.
    orders = []
    events = []
    for pk in rng.sample(current, k=min(len(current), max(3, total // 500))):
        recent = rng.random() < 0.5
        at = now - dt.timedelta(hours=rng.uniform(1, 20) if recent else rng.uniform(48, 24 * 300))
        code = RENEWAL_NOT_ENABLED if rng.random() < 0.3 else "ca_unavailable"
        orders.append(_order(rng, pk, OrderState.FAILED, at, completed=at, error=code))
        events.append(_event(pk, EventKind.RENEWAL_FAILED, "Renewal failed.", at))
    failed = {order["certificate_id"] for order in orders}
    for pk in rng.sample(current, k=min(len(current), max(2, total // 2000))):
        if pk not in failed:
            step = OrderState.PENDING if rng.random() < 0.5 else OrderState.IN_PROGRESS
            orders.append(_order(rng, pk, step, now - dt.timedelta(minutes=5)))
    event_count += copy_rows(Event, events, with_id=False)
    order_count += copy_rows(Order, orders, with_id=False)
    for model in (Certificate, Event, Order):
        reset_sequence(model)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # statistics and the visibility map, as a live database has

    assert sample is not None, "no current certificate with a key in the second half"
    system = next(s for s in SYSTEMS if sample["subject_cn"].startswith(s + " "))
    place = sample["subject_cn"][len(system) + 1 :].split()[0]
    return Seeded(
        certificates=total,
        organisations=organisations,
        events=event_count,
        orders=order_count,
        sample_fingerprint=sample["fingerprint_sha256"][:8],
        sample_cvr=sample["cvr"],
        sample_org_name=org_names[sample["organization_id"] - 1],
        sample_cn_words=f"{system} {place}",
        sample_common_word=place,
        sample_detail_pk=sample["id"],
    )


def _event(pk: int, kind: str, message: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "certificate_id": pk,
        "kind": kind,
        "actor_id": None,
        "actor_label": "scheduler",
        "message": message,
        "detail": Jsonb({}),
        "created_at": at,
    }


def _order(
    rng: random.Random,
    pk: int,
    state: str,
    at: dt.datetime,
    *,
    completed: dt.datetime | None = None,
    new_certificate: int | None = None,
    error: str = "",
) -> dict[str, Any]:
    return {
        "certificate_id": pk,
        "kind": OrderKind.RENEW,
        "state": state,
        "ca_order_id": f"order-{pk}",
        "idempotency_key": uuid.UUID(int=rng.getrandbits(128), version=4),
        "attempts": 3 if error else 1,
        "next_attempt_at": at,
        "last_error_code": error,
        "last_error": "The CA refused the renewal." if error else "",
        "alerted": bool(error),
        "requested_by_id": None,
        "requested_by_label": "scheduler",
        "new_certificate_id": new_certificate,
        "created_at": at,
        "updated_at": completed or at,
        "completed_at": completed,
    }
