"""Endpoints: adding them (one, or a pasted list or CSV), scanning them, recording what they served, the
problems found there, and the registration checklist. Called alike from views, tasks and tests.

A scan enters what it finds into the certificate inventory (source "endpoint") through certificates'
own import path, or matches a certificate already there by fingerprint, and links it to the endpoint.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import logging
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from certificates.alerts import thresholds
from certificates.choices import EventKind, LifecycleState, Source
from certificates.models import Certificate, Organization, organisation_limit
from certificates.networks import is_blocked
from certificates.services import Actor, record_event, shorten, store_bundle
from certificates.trust import TrustStore, fingerprint, issued_by
from certificates.x509 import Bundle, CertificateFileError, chain_for, oces_cvr, to_pem

from . import scanner
from .choices import DEFAULT_PORTS, ProblemKind, Protocol
from .models import Endpoint, Problem, RegistrationItem, Scan, Sighting

log = logging.getLogger(__name__)

SCANNER = "endpoint scan"
# A pasted list or CSV file holds at most this many lines (and bytes).
MAX_BULK_LINES = 1000
MAX_BULK_BYTES = 256 * 1024
# A bulk add spreads the first scans over at most this long, so a thousand endpoints do not fire at once.
FIRST_SCAN_SPREAD = dt.timedelta(minutes=10)
MAX_CHAIN_DEPTH = 6
# Scans are kept this long (each endpoint's last scan always).
SCAN_HISTORY = dt.timedelta(days=90)
# A person's "Scan now" (page or API) runs at most once per endpoint in this long.
MANUAL_SCAN_GAP = dt.timedelta(seconds=30)

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")


class EndpointInputError(ValueError):
    """An endpoint that cannot be added; the message is the sentence shown to the user."""


class ScanTooSoon(ValueError):
    """A "Scan now" within MANUAL_SCAN_GAP of the last one; the message is the sentence to show."""


# --- input ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint as typed: checked, not yet stored."""

    host: str
    port: int
    sni: str
    protocol: str


def clean_host(text: str) -> str:
    """A host name (IDNA-encoded, lower case) or an IP address; anything else (a URL, a path, a port)
    raises EndpointInputError. An address in a blocked network is refused here too."""
    text = text.strip().strip("[]")
    if not text:
        raise EndpointInputError(gettext("Give a host name or an IP address."))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        if is_blocked(str(address)):
            raise EndpointInputError(
                gettext("%(address)s is in a network the scanner may not reach.") % {"address": address}
            )
        return str(address)
    try:
        name = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        name = ""
    if not _HOST_NAME.match(name):
        raise EndpointInputError(
            gettext("“%(text)s” is not a host name or an IP address (no https://, path or port here).")
            % {"text": shorten(text, 80)}
        )
    return name.rstrip(".")


def clean_spec(host: str, port: str | int | None, protocol: str | None, sni: str | None) -> EndpointSpec:
    """Check one endpoint's fields; "host:port" in the host field is understood. Raises EndpointInputError."""
    host = host.strip()
    protocol = (protocol or "").strip().lower() or Protocol.TLS
    if protocol not in Protocol.values:
        raise EndpointInputError(
            gettext("Unknown protocol “%(protocol)s”: use %(choices)s.")
            % {"protocol": shorten(protocol, 20), "choices": ", ".join(Protocol.values)}
        )
    match = (
        re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", host) if host.count(":") == 1 or "]:" in host else None
    )
    if match and not str(port or "").strip():
        host, port = match.group(1), match.group(2)
    port_text = str(port or "").strip()
    if not port_text:
        port_number = DEFAULT_PORTS[Protocol(protocol)]
    elif port_text.isdigit() and 1 <= int(port_text) <= 65535:
        port_number = int(port_text)
    else:
        raise EndpointInputError(gettext("The port must be a number from 1 to 65535."))
    sni_name = (sni or "").strip()
    return EndpointSpec(
        host=clean_host(host),
        port=port_number,
        sni=clean_host(sni_name) if sni_name else "",
        protocol=protocol,
    )


def check_organisation(user: AbstractBaseUser | AnonymousUser, organization: Organization | None) -> None:
    """A user limited to some organisations adds endpoints only to one of them."""
    limit = organisation_limit(user)  # type: ignore[arg-type]
    if limit is None:
        return
    if organization is None or not limit.filter(pk=organization.pk).exists():
        raise EndpointInputError(gettext("Choose one of your organisations for the endpoint."))


def add_endpoint(
    spec: EndpointSpec, *, organization: Organization | None, actor: AbstractBaseUser | AnonymousUser
) -> tuple[Endpoint, bool]:
    """Store an endpoint (or find the same one already there); it is scanned at once (next_scan_at now)."""
    check_organisation(actor, organization)
    existing = _existing(spec, organization)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            endpoint = Endpoint.objects.create(
                organization=organization,
                host=spec.host,
                port=spec.port,
                sni=spec.sni,
                protocol=spec.protocol,
                created_by=actor if isinstance(actor, User) else None,
            )
    except IntegrityError:
        found = _existing(spec, organization)
        if found is None:
            raise
        return found, False
    return endpoint, True


def add_and_scan(
    spec: EndpointSpec, *, organization: Organization | None, actor: AbstractBaseUser | AnonymousUser
) -> tuple[Endpoint, bool]:
    """Add one endpoint from the portal and scan it at once, so its certificate shows straight away."""
    endpoint, created = add_endpoint(spec, organization=organization, actor=actor)
    if created:
        Endpoint.objects.filter(pk=endpoint.pk).update(next_scan_at=next_scan(timezone.now()))
        scan_endpoint(endpoint)
    return endpoint, created


def _existing(spec: EndpointSpec, organization: Organization | None) -> Endpoint | None:
    return Endpoint.objects.filter(
        organization=organization, host=spec.host, port=spec.port, sni=spec.sni, protocol=spec.protocol
    ).first()


@dataclass
class BulkOutcome:
    added: list[Endpoint]
    present: list[Endpoint]


class BulkInputError(ValueError):
    """A list with lines that cannot be added: `errors` has one sentence per bad line; nothing was stored."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_bulk(text: str) -> list[EndpointSpec]:
    """Endpoints from a pasted list or a CSV file, one a line: `host[:port][,port][,protocol][,sni]`
    (commas, semicolons or tabs); blank lines and lines starting with # are skipped, and so is a header
    line starting with "host". Raises BulkInputError naming every bad line."""
    if len(text.encode()) > MAX_BULK_BYTES:
        raise BulkInputError([gettext("The list is larger than 256 KiB; split it.")])
    lines = text.splitlines()
    if len(lines) > MAX_BULK_LINES:
        raise BulkInputError(
            [gettext("The list has more than %(count)s lines; split it.") % {"count": MAX_BULK_LINES}]
        )
    specs: list[EndpointSpec] = []
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        dialect = csv.excel_tab if "\t" in stripped else csv.excel
        delimiter = ";" if ";" in stripped and "," not in stripped else dialect.delimiter
        try:
            fields = next(csv.reader(io.StringIO(stripped), dialect=dialect, delimiter=delimiter))
        except csv.Error as error:
            errors.append(gettext("Line %(line)s: %(error)s") % {"line": number, "error": error})
            continue
        fields = [f.strip() for f in fields] + ["", "", ""]
        if number == 1 and fields[0].lower() == "host":
            continue
        if len([f for f in fields if f]) > 4:
            errors.append(
                gettext("Line %(line)s: too many fields; use host, port, protocol, SNI name.")
                % {"line": number}
            )
            continue
        try:
            specs.append(clean_spec(fields[0], fields[1], fields[2], fields[3]))
        except EndpointInputError as error:
            errors.append(gettext("Line %(line)s: %(error)s") % {"line": number, "error": error})
    if errors:
        raise BulkInputError(errors)
    if not specs:
        raise BulkInputError([gettext("The list holds no endpoint.")])
    return list(dict.fromkeys(specs))


def add_bulk(
    text: str, *, organization: Organization | None, actor: AbstractBaseUser | AnonymousUser
) -> BulkOutcome:
    """Add every endpoint of a list, or none (BulkInputError); their first scans are spread over a few
    minutes so a long list does not fire at once."""
    check_organisation(actor, organization)
    specs = parse_bulk(text)
    outcome = BulkOutcome([], [])
    now = timezone.now()
    spread = min(FIRST_SCAN_SPREAD, dt.timedelta(seconds=settings.TRUSTVIEW_ENDPOINT_SCAN_INTERVAL_SECONDS))
    with transaction.atomic():
        for spec in specs:
            endpoint, created = add_endpoint(spec, organization=organization, actor=actor)
            if created:
                endpoint.next_scan_at = now + spread * random.random()  # noqa: S311 (spreading, not secrecy)
                endpoint.save(update_fields=["next_scan_at"])
                outcome.added.append(endpoint)
            else:
                outcome.present.append(endpoint)
    return outcome


# --- scanning ------------------------------------------------------------------------------------------


def target(endpoint: Endpoint) -> scanner.Target:
    return scanner.Target(endpoint.host, endpoint.port, endpoint.sni, endpoint.protocol)


def next_scan(now: dt.datetime) -> dt.datetime:
    """When to scan again: one interval on, jittered by a tenth either way, so endpoints added together
    drift apart instead of firing together for ever."""
    interval = settings.TRUSTVIEW_ENDPOINT_SCAN_INTERVAL_SECONDS
    return now + dt.timedelta(seconds=interval * random.uniform(0.9, 1.1))  # noqa: S311


def scan_endpoint(endpoint: Endpoint, now: dt.datetime | None = None) -> Scan:
    """Scan one endpoint now (the "Scan now" button) and record what it served."""
    observation = scanner.scan(target(endpoint))
    return record(endpoint, observation, TrustStore.load(), now or timezone.now())


def scan_now(endpoint: Endpoint, now: dt.datetime | None = None) -> Scan:
    """A person's "Scan now": claimed with a conditional update, so that at most one runs per endpoint
    per MANUAL_SCAN_GAP however many requests arrive together. Raises ScanTooSoon."""
    now = now or timezone.now()
    fresh = Q(manual_scan_at=None) | Q(manual_scan_at__lte=now - MANUAL_SCAN_GAP)
    if not Endpoint.objects.filter(fresh, pk=endpoint.pk).update(manual_scan_at=now):
        raise ScanTooSoon(
            gettext("This endpoint was scanned a moment ago; scan it again in %(seconds)s seconds.")
            % {"seconds": int(MANUAL_SCAN_GAP.total_seconds())}
        )
    return scan_endpoint(endpoint, now)


def scan_many(endpoints: list[Endpoint], now: dt.datetime | None = None) -> list[Scan]:
    """Scan endpoints side by side (at most TRUSTVIEW_ENDPOINT_CONCURRENCY at once), then record each.
    The threads only talk to the network; the database is written here, in this thread."""
    if not endpoints:
        return []
    workers = max(1, min(settings.TRUSTVIEW_ENDPOINT_CONCURRENCY, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="endpoint-scan") as pool:
        observations = list(pool.map(scanner.scan, [target(e) for e in endpoints]))
    store = TrustStore.load()
    scans = []
    for endpoint, observation in zip(endpoints, observations, strict=True):
        try:
            scans.append(record(endpoint, observation, store, now or timezone.now()))
        except Exception:  # one endpoint's odd answer must not lose the others' scans
            log.exception("Recording the scan of endpoint %s failed", endpoint.pk)
    return scans


def scan_due(now: dt.datetime | None = None) -> int:
    """Scan the endpoints whose next scan is due, at most TRUSTVIEW_ENDPOINT_SCAN_BATCH per run. Each is
    claimed with a conditional update that moves its next scan on, so two runs never scan the same
    endpoint, and one that fails is not retried at every run. Returns how many were scanned."""
    now = now or timezone.now()
    due = list(
        Endpoint.objects.due(now)
        .order_by("next_scan_at", "pk")
        .values_list("pk", "next_scan_at")[: settings.TRUSTVIEW_ENDPOINT_SCAN_BATCH]
    )
    claimed = [
        pk
        for pk, was in due
        if Endpoint.objects.filter(pk=pk, next_scan_at=was).update(next_scan_at=next_scan(now))
    ]
    endpoints = list(Endpoint.objects.filter(pk__in=claimed).select_related("organization"))
    scanned = len(scan_many(endpoints, now))
    prune_scans(now)
    return scanned


def prune_scans(now: dt.datetime | None = None) -> int:
    """Forget scans older than SCAN_HISTORY, except each endpoint's last one: an hourly scan would
    otherwise keep 8,760 rows a year per endpoint. What a certificate was served by, and when, stays
    in the sightings. Returns how many were deleted."""
    cutoff = (now or timezone.now()) - SCAN_HISTORY
    last = Endpoint.objects.exclude(last_scan=None).values("last_scan")
    deleted, _ = Scan.objects.filter(scanned_at__lt=cutoff).exclude(pk__in=last).delete()
    return deleted


def record(endpoint: Endpoint, observation: scanner.Observation, store: TrustStore, now: dt.datetime) -> Scan:
    """Store what one scan saw, enter its certificate into the inventory, and open or close problems."""
    scan = Scan(
        endpoint=endpoint,
        scanned_at=now,
        address=observation.address,
        seconds=observation.seconds,
        tls_version=observation.tls_version,
    )
    if observation.error is not None:
        scan.error_code = observation.error.code
        scan.error = scanner.ERROR_SENTENCES[observation.error.code]
        scan.error_detail = {k: shorten(str(v), 200) for k, v in observation.error.detail.items()}
    leaf = observation.leaf
    with transaction.atomic():
        if leaf is not None:
            served = observation.served
            verdict = store.verify(leaf, served[1:])
            scan.served_pem = to_pem(served)
            scan.subject_cn = shorten(_common_name(leaf), 255)
            scan.not_after = leaf.not_valid_after_utc
            scan.fingerprint_sha256 = fingerprint(leaf)
            scan.name_matches = scanner.name_matches(leaf, endpoint.expected_name)
            scan.chain_complete = chain_complete(leaf, served[1:], store)
            scan.chain_verified = verdict.verified
            scan.verification_error = verdict.error
            scan.certificate = _enter(endpoint, leaf, served, verified=verdict.verified)
        scan.save()
        updates: dict[str, object] = {"last_scan": scan}
        if scan.certificate is not None:
            updates["certificate"] = scan.certificate
            sighting, created = Sighting.objects.get_or_create(
                endpoint=endpoint,
                certificate=scan.certificate,
                defaults={"first_seen_at": now, "last_seen_at": now},
            )
            if not created:
                Sighting.objects.filter(pk=sighting.pk).update(last_seen_at=now)
        elif scan.ok:
            updates["certificate"] = None
        Endpoint.objects.filter(pk=endpoint.pk).update(**updates)
        for name, value in updates.items():
            setattr(endpoint, name, value)
        judge(endpoint, scan, now)
    return scan


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def chain_complete(leaf: x509.Certificate, served: list[x509.Certificate], store: TrustStore) -> bool:
    """Whether the server sent every issuer between its certificate and a root: following signatures
    through what was served reaches a trusted CA's certificate, one a trusted CA signed, or a self-signed
    certificate. A missing intermediate makes clients that do not fetch it fail."""
    anchors = [certificate for _, certificate in store.anchors.values()]
    current = leaf
    for _ in range(MAX_CHAIN_DEPTH):
        if fingerprint(current) in store.anchors or current.issuer == current.subject:
            return True
        if any(a.subject == current.issuer and issued_by(current, a) for a in anchors):
            return True
        parent = next((c for c in served if c.subject == current.issuer and issued_by(current, c)), None)
        if parent is None:
            return False
        current = parent
    return False


def _enter(
    endpoint: Endpoint, leaf: x509.Certificate, served: list[x509.Certificate], *, verified: bool
) -> Certificate | None:
    """The inventory's row for the served certificate: found by fingerprint, or stored now with the
    issuers the server sent (source "endpoint"). A certificate without a CVR takes the endpoint's
    organisation, so whoever may see the endpoint may see what it serves. None when it cannot be stored.

    A CVR in a certificate no trusted CA vouches for is only a claim: anyone who runs a server (or adds
    an endpoint pointing at one) could otherwise plant certificates, and new organisations, in another
    organisation's inventory and alerts. Such a certificate enters only when the claimed CVR is the
    endpoint's own organisation's; otherwise the scan still reports it, but the inventory does not."""
    found = Certificate.objects.filter(fingerprint_sha256=fingerprint(leaf)).first()
    if found is not None:
        return found
    claimed = oces_cvr(leaf.subject)
    if claimed and not verified:
        own = endpoint.organization.cvr if endpoint.organization_id and endpoint.organization else ""
        if claimed != own:
            log.info(
                "Endpoint %s serves an unverified certificate claiming CVR %s; not entered",
                endpoint.pk,
                claimed,
            )
            return None
    bundle = Bundle([leaf, *chain_for(leaf, Bundle([leaf, *served]))])
    try:
        with transaction.atomic():
            store_bundle(
                bundle,
                source=Source.ENDPOINT,
                actor=SCANNER,
                event_kind=EventKind.DISCOVERED,
                message=gettext_noop("Found on endpoint %(endpoint)s."),
                endpoint=str(endpoint),
            )
    except (CertificateFileError, ValueError) as error:
        log.info("The certificate served by endpoint %s cannot be stored: %s", endpoint.pk, error)
        return None
    certificate = Certificate.objects.filter(fingerprint_sha256=fingerprint(leaf)).first()
    if certificate is not None and certificate.organization_id is None and endpoint.organization_id:
        Certificate.objects.filter(pk=certificate.pk, organization=None).update(
            organization=endpoint.organization_id
        )
        certificate.organization_id = endpoint.organization_id
    return certificate


# --- problems ------------------------------------------------------------------------------------------


def superseded_at(certificate: Certificate) -> dt.datetime | None:
    """When the certificate was superseded: when its renewal entered the inventory."""
    return Certificate.objects.filter(renewed_from=certificate).values_list("created_at", flat=True).first()


def judge(endpoint: Endpoint, scan: Scan, now: dt.datetime) -> None:
    """Open the problems this scan shows and close those it no longer shows. A scan that failed only says
    the endpoint stopped answering: what it served before is not judged again until it answers."""
    found: dict[ProblemKind, tuple[Certificate | None, dt.datetime]] = {}
    if not scan.ok:
        found[ProblemKind.UNREACHABLE] = (None, now)
        judged = {ProblemKind.UNREACHABLE}
    else:
        judged = set(ProblemKind)
        certificate = scan.certificate
        if certificate is not None and certificate.state == LifecycleState.SUPERSEDED:
            since = superseded_at(certificate) or now
            grace = dt.timedelta(seconds=settings.TRUSTVIEW_DEPLOYMENT_GRACE_SECONDS)
            found[ProblemKind.SUPERSEDED] = (certificate, since + grace)
        levels = thresholds()
        if scan.not_after is not None and levels and scan.not_after <= now + dt.timedelta(days=max(levels)):
            found[ProblemKind.EXPIRING] = (certificate, now)
        if scan.name_matches is False:
            found[ProblemKind.NAME_MISMATCH] = (certificate, now)
        if scan.chain_complete is False:
            found[ProblemKind.CHAIN_INCOMPLETE] = (certificate, now)
    for problem in Problem.objects.filter(endpoint=endpoint, closed_at=None):
        kind = ProblemKind(problem.kind)
        if kind not in judged:
            continue
        if kind not in found:
            Problem.objects.filter(pk=problem.pk, closed_at=None).update(closed_at=now)
        elif kind == ProblemKind.SUPERSEDED and found[kind][0] != problem.certificate:
            # Another superseded certificate than before: that one's grace period starts anew.
            Problem.objects.filter(pk=problem.pk, closed_at=None).update(closed_at=now)
        elif found[kind][0] != problem.certificate:
            # The same trouble with the certificate served now (a new one with the same wrong name, say):
            # still one problem, told once, not a "cleared" and a new alert.
            Problem.objects.filter(pk=problem.pk).update(certificate=found[kind][0])
    still_open = set(Problem.objects.filter(endpoint=endpoint, closed_at=None).values_list("kind", flat=True))
    for kind, (certificate, due_at) in found.items():
        if kind in still_open:
            continue
        try:
            with transaction.atomic():
                Problem.objects.create(
                    endpoint=endpoint,
                    kind=kind,
                    certificate=certificate,
                    opened_at=now,
                    due_at=due_at,
                    detail=_problem_detail(kind, scan, endpoint),
                )
        except IntegrityError:
            continue  # opened by a scan running at the same moment


def _problem_detail(kind: ProblemKind, scan: Scan, endpoint: Endpoint) -> dict[str, str]:
    detail = {"subject": scan.subject_cn, "expected_name": endpoint.expected_name}
    if scan.not_after is not None:
        detail["not_after"] = f"{timezone.localtime(scan.not_after):%Y-%m-%d %H:%M}"
    if kind == ProblemKind.UNREACHABLE:
        detail["error"] = scan.error_text
    return detail


def rescan_after_renewal(old: Certificate) -> list[int]:
    """Every endpoint that served `old` is scanned at the next run (now), to see whether the renewal
    has been deployed there. Returns their ids."""
    ids = list(Sighting.objects.filter(certificate=old).values_list("endpoint_id", flat=True))
    Endpoint.objects.filter(pk__in=ids).update(next_scan_at=timezone.now())
    return ids


# --- registration checklist ----------------------------------------------------------------------------


class ChecklistError(ValueError):
    """A checklist change that cannot be made; the message is a sentence for the user."""


def add_place(certificate: Certificate, place: str, *, done: bool, actor: Actor) -> RegistrationItem:
    """Note a place where the certificate is registered (done) or must be registered (open)."""
    place = " ".join(place.split())
    if not place:
        raise ChecklistError(gettext("Name the place where the certificate is registered."))
    if len(place) > 200:
        raise ChecklistError(gettext("The name of the place is too long (at most 200 characters)."))
    with transaction.atomic():
        item, created = RegistrationItem.objects.get_or_create(certificate=certificate, place=place)
        if not created:
            raise ChecklistError(gettext("“%(place)s” is on the checklist already.") % {"place": place})
        record_event(
            certificate,
            EventKind.REGISTRATION,
            actor,
            gettext_noop("Registration place added: %(place)s."),
            place=place,
        )
        if done:
            _tick(item, actor)
    return item


def tick(item: RegistrationItem, actor: Actor) -> bool:
    """Tick a checklist item off: the certificate is now registered there. Returns False when it was
    already ticked (by someone else a moment ago)."""
    with transaction.atomic():
        return _tick(item, actor)


def _tick(item: RegistrationItem, actor: Actor) -> bool:
    user = actor if isinstance(actor, User) else None
    label = user.get_username() if user is not None else str(actor or "system")
    now = timezone.now()
    if not RegistrationItem.objects.filter(pk=item.pk, done_at=None).update(
        done_at=now, done_by=user, done_by_label=label
    ):
        return False
    item.done_at, item.done_by, item.done_by_label = now, user, label
    record_event(
        item.certificate,
        EventKind.REGISTRATION,
        actor,
        gettext_noop("Registered at %(place)s (ticked off)."),
        place=item.place,
    )
    return True


def copy_checklist(old: Certificate, new: Certificate) -> int:
    """After a renewal: the new certificate must be registered wherever the old one was. Each of the old
    certificate's places becomes an open item of the new one. Returns how many were added."""
    places = list(RegistrationItem.objects.filter(certificate=old).values_list("place", flat=True))
    existing = set(RegistrationItem.objects.filter(certificate=new).values_list("place", flat=True))
    added = [RegistrationItem(certificate=new, place=p) for p in places if p not in existing]
    RegistrationItem.objects.bulk_create(added, ignore_conflicts=True)
    if added:
        record_event(
            new,
            EventKind.REGISTRATION,
            "system",
            gettext_noop("Registration checklist from the certificate it renews: %(places)s."),
            places=", ".join(i.place for i in added),
        )
    return len(added)


def open_items(now: dt.datetime | None = None) -> list[RegistrationItem]:
    """Open checklist items of current certificates (a superseded or expired one needs no registering)."""
    current = Certificate.objects.current(now)
    return list(
        RegistrationItem.objects.filter(done_at=None, certificate__in=current)
        .select_related("certificate")
        .order_by(F("certificate__not_after").asc(), "certificate_id", "place")
    )
