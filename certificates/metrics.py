"""Prometheus metrics (/metrics): every certificate the portal looks after, and the portal's own health.

Per certificate, x509-certificate-exporter's metrics with its labels, so the dashboards and alert rules
people already run for that exporter work unchanged: `x509_cert_not_after`, `x509_cert_not_before`
(seconds since the epoch) and `x509_cert_expired` (0 or 1), labelled `serial_number` (decimal, as the
exporter writes it), `subject_C`, `subject_ST`, `subject_L`, `subject_O`, `subject_OU`, `subject_CN`,
the same six `issuer_*`, and the portal's `cvr`, `environment` and `state` (a Status value, from
CertificateQuerySet.with_status). One series per certificate in use: current ones, and those that
lapsed within RECENT_LAPSE_DAYS (expired without a renewal: what `x509_cert_expired` is for).
Superseded and blocked certificates have none.

The portal's own: renewal orders by state, renewal orders retrying, renewal failures, seconds since the
last successful renewal sweep, alerts sent by kind, import errors, and (certificates.channels) chat and
webhook deliveries.

The per-certificate part is streamed: one query read in chunks (`iterator(chunk_size=...)`) of only the
columns the labels need (never the PEM, chain or key), written out as it is read. A family must be one
block in the text format, so the not_before and expired lines go to spooled temporary files (on disk
past a megabyte) while the not_after lines are sent, and follow them: memory stays flat however large
the inventory.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.db.models import BigIntegerField, Count, Func
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .choices import AlertKind, ChannelKind, DeliveryState, OrderKind, OrderState
from .models import (
    RECENT_LAPSE_DAYS,
    AlertChannel,
    CertificateQuerySet,
    ChannelMessage,
    ExpiryAlert,
    MetricCounter,
    Order,
    SchedulerHeartbeat,
)

# The text exposition format that prometheus_client writes and Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHUNK_SIZE = 2000
DN_FIELDS = ("C", "ST", "L", "O", "OU", "CN")
# What a series needs of a certificate (`status` is with_status's annotation, the validity comes as epoch
# seconds from EpochSeconds): never the PEM or the key.
COLUMNS = (
    "serial_number",
    "subject_dn",
    "issuer_dn",
    "cvr",
    "environment",
    "status",
    "not_before_epoch",
    "not_after_epoch",
)


class EpochSeconds(Func):
    """A datetime column as whole seconds since the epoch, computed by the database: reading 200,000
    timestamps as datetimes was half the scrape's time at 100,000 certificates."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS bigint)",
            **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # '%%%%s' is strftime's %s after the template's own % formatting and the backend's placeholders.
        return self.as_sql(
            compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS integer)", **extra
        )


CERTIFICATE_FAMILIES = (
    ("x509_cert_not_after", "The certificate's NotAfter, in seconds since the epoch."),
    ("x509_cert_not_before", "The certificate's NotBefore, in seconds since the epoch."),
    ("x509_cert_expired", "1 when the certificate has expired, else 0."),
)


def exposition(certificates: CertificateQuerySet, now: dt.datetime | None = None) -> Iterator[bytes]:
    """The whole /metrics answer, piece by piece: the portal's metrics, then one series per certificate
    in use among `certificates` (the caller has applied the reader's organisation limit)."""
    now = now or timezone.now()
    yield portal_metrics(now)
    yield from certificate_metrics(certificates, now)


# --- per certificate -----------------------------------------------------------------------------------


def in_use(certificates: CertificateQuerySet, now: dt.datetime) -> CertificateQuerySet:
    """The certificates that have series: current ones, and those lapsed within RECENT_LAPSE_DAYS."""
    since = now - dt.timedelta(days=RECENT_LAPSE_DAYS)
    return certificates.current(now) | certificates.lapsed(now, since=since)


def certificate_metrics(certificates: CertificateQuerySet, now: dt.datetime) -> Iterator[bytes]:
    rows = (
        in_use(certificates, now)
        .with_status(now)
        .annotate(not_before_epoch=EpochSeconds("not_before"), not_after_epoch=EpochSeconds("not_after"))
        .order_by()
        .values_list(*COLUMNS)
        .iterator(chunk_size=CHUNK_SIZE)
    )
    headers = [_header(name, text) for name, text in CERTIFICATE_FAMILIES]
    with _spool() as not_before, _spool() as expired:
        yield headers[0]
        after: list[str] = []
        before: list[str] = []
        gone: list[str] = []
        now_epoch = now.timestamp()
        for serial, subject_dn, issuer_dn, cvr, environment, status, valid_from, valid_to in rows:
            labels = _labels(serial, subject_dn, issuer_dn, cvr, environment, status)
            after.append(f"x509_cert_not_after{labels} {valid_to}\n")
            before.append(f"x509_cert_not_before{labels} {valid_from}\n")
            gone.append(f"x509_cert_expired{labels} {1 if valid_to <= now_epoch else 0}\n")
            if len(after) >= CHUNK_SIZE:
                yield _flush(after, before, gone, not_before, expired)
        yield _flush(after, before, gone, not_before, expired)
        for header, spool in ((headers[1], not_before), (headers[2], expired)):
            yield header
            yield from _replay(spool)


def _flush(after: list[str], before: list[str], gone: list[str], *spools: IO[str]) -> bytes:
    """The not_after lines to send now; the other families' lines go to their spools."""
    for lines, spool in zip((before, gone), spools, strict=True):
        spool.write("".join(lines))
        lines.clear()
    text = "".join(after).encode()
    after.clear()
    return text


def _spool() -> tempfile.SpooledTemporaryFile[str]:
    return tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="w+", encoding="utf-8")


def _replay(spool: IO[str]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(256 * 1024):
        yield chunk.encode()


def _header(name: str, text: str) -> bytes:
    return f"# HELP {name} {text}\n# TYPE {name} gauge\n".encode()


def _labels(serial: str, subject_dn: str, issuer_dn: str, cvr: str, environment: str, status: str) -> str:
    # environment and state are choice values and need no escaping; this runs once per certificate.
    return (
        f'{{serial_number="{_decimal(serial)}",{_dn_labels("subject", subject_dn)},'
        f'{_issuer_labels(issuer_dn)},cvr="{_escape(cvr)}",environment="{environment}",state="{status}"}}'
    )


@functools.lru_cache(maxsize=1024)  # a few issuers sign everything: each is written once
def _issuer_labels(dn: str) -> str:
    return _dn_labels("issuer", dn)


def _dn_labels(prefix: str, dn: str) -> str:
    f = dn_fields(dn)
    if '"' in dn or "\\" in dn or "\n" in dn:  # only then can a value need escaping
        f = {name: _escape(value) for name, value in f.items()}
    get = f.get
    # One f-string rather than a join: this is the per-certificate hot path (see DN_FIELDS).
    return (
        f'{prefix}_C="{get("C", "")}",{prefix}_ST="{get("ST", "")}",{prefix}_L="{get("L", "")}",'
        f'{prefix}_O="{get("O", "")}",{prefix}_OU="{get("OU", "")}",{prefix}_CN="{get("CN", "")}"'
    )


def _decimal(serial_hex: str) -> str:
    try:
        return str(int(serial_hex, 16))
    except ValueError:
        return _escape(serial_hex)


def _escape(value: str) -> str:
    """A label value as the text format writes it: backslash, double quote and line feed escaped."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


# One attribute of an RFC 4514 name: its type, `=`, and a value up to an unescaped `,` or `+`.
_ATTRIBUTE = re.compile(r"([A-Za-z][\w-]*|\d+(?:\.\d+)+)=((?:\\.|[^,+\\])*)")


def dn_fields(dn: str) -> dict[str, str]:
    """The first value of each attribute in a distinguished name as certificates.x509 stores it
    (RFC 4514 attribute strings, `CN=..., O=..., C=DK`, with `\\,` and `\\XX` escapes)."""
    fields: dict[str, str] = {}
    if "\\" not in dn and "+" not in dn:  # the usual name: plain splitting, several times faster
        for attribute in dn.split(", "):
            name, _, value = attribute.partition("=")
            if name not in fields:
                fields[name] = value
        return fields
    for name, value in _ATTRIBUTE.findall(dn):
        if name not in fields:
            fields[name] = _unescape(value.strip())
    return fields


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


# --- the portal's own ----------------------------------------------------------------------------------


def portal_metrics(now: dt.datetime) -> bytes:
    """The portal's own metrics in the text format (a handful of small aggregate queries)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector(now))
    return generate_latest(registry)


class PortalCollector(Collector):
    """Reads the portal's own figures from the database at each scrape: every process writes them there,
    so whichever web process answers the scrape reports the same numbers."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def collect(self) -> Iterable[Metric]:
        renewals = Order.objects.filter(kind=OrderKind.RENEW)
        by_state = dict(renewals.order_by().values_list("state").annotate(n=Count("pk")))
        orders = GaugeMetricFamily("trustview_renewal_orders", "Renewal orders by state.", labels=["state"])
        for state in OrderState:
            orders.add_metric([state.value], by_state.get(state.value, 0))
        yield orders
        yield GaugeMetricFamily(
            "trustview_renewal_orders_retrying",
            "Open renewal orders that have failed at least once and are being retried.",
            value=renewals.open().filter(attempts__gt=0).count(),
        )
        yield CounterMetricFamily(
            "trustview_renewal_failures",
            "Renewal orders that failed for good (each is also e-mailed to the administrators).",
            value=by_state.get(OrderState.FAILED.value, 0),
        )
        last = (
            SchedulerHeartbeat.objects.filter(name=SchedulerHeartbeat.RENEWAL_SWEEP)
            .values_list("last_success_at", flat=True)
            .first()
        )
        if last is not None:
            yield GaugeMetricFamily(
                "trustview_last_sweep_age_seconds",
                "Seconds since the last successful renewal sweep (absent before the first one).",
                value=max(0.0, (self.now - last).total_seconds()),
            )
        sent = dict(ExpiryAlert.objects.order_by().values_list("kind").annotate(n=Count("pk")))
        alerts = CounterMetricFamily(
            "trustview_alerts_sent",
            "Certificate alerts sent (one per certificate, kind and threshold), by kind.",
            labels=["kind"],
        )
        for kind in AlertKind:
            alerts.add_metric([kind.value], sent.get(kind.value, 0))
        yield alerts
        deliveries = dict(
            ((kind, state), n)
            for kind, state, n in ChannelMessage.objects.order_by()
            .values_list("channel__kind", "state")
            .annotate(n=Count("pk"))
        )
        channel_family = CounterMetricFamily(
            "trustview_channel_messages",
            "Alert messages to Teams, Slack and webhook channels, by channel kind and delivery state.",
            labels=["channel", "state"],
        )
        for channel_kind in ChannelKind:
            for delivery in DeliveryState:
                channel_family.add_metric(
                    [channel_kind.value, delivery.value],
                    deliveries.get((channel_kind.value, delivery.value), 0),
                )
        yield channel_family
        failing = sum(
            1
            for channel in AlertChannel.objects.filter(enabled=True).only(
                "last_success_at", "last_failure_at"
            )
            if channel.failing
        )
        yield GaugeMetricFamily(
            "trustview_alert_channels_failing",
            "Enabled alert channels whose last delivery attempt failed.",
            value=failing,
        )
        yield CounterMetricFamily(
            "trustview_import_errors",
            "Certificate files refused by the import (page, command or API).",
            value=MetricCounter.read(MetricCounter.IMPORT_ERRORS),
        )
