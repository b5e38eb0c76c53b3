"""The certificate inventory: organisations, certificates and their append-only history."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Case, Exists, ExpressionWrapper, OuterRef, Q, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from .choices import (
    OPEN_ORDER_STATES,
    EventKind,
    LifecycleState,
    OcesType,
    OrderKind,
    OrderState,
    Source,
    Status,
    TrustSource,
)
from .choices import Environment as CertEnvironment

DEFAULT_RENEW_BEFORE = dt.timedelta(days=30)


def renewal_due_at(
    not_before: dt.datetime, not_after: dt.datetime, renew_before: dt.timedelta
) -> dt.datetime:
    """When a certificate becomes due for renewal (DESIGN.md, renewal policy).

    Normally `renew_before` ahead of expiry. A short-lived certificate, for which that would be half its
    lifetime or more, is due when a third of its lifetime is left, so it is neither renewed at birth
    nor left to the last moment.
    """
    lifetime = not_after - not_before
    if renew_before * 2 >= lifetime:
        return not_after - lifetime / 3
    return not_after - renew_before


class Organization(models.Model):
    """A Danish organisation, known by its CVR number, that holds certificates."""

    cvr = models.CharField(
        "CVR",
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^\d{8}$", "A CVR number has 8 digits.")],
    )
    name = models.CharField(max_length=200, blank=True)
    renewal_enabled = models.BooleanField(
        "MitID renewal enabled",
        null=True,
        blank=True,
        default=None,
        help_text="Unknown until set here or learnt from MitID Erhverv. Digst enables renewal per "
        "organisation on request by e-mail to mitiderhverv@digst.dk; until then renewals are refused.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "cvr"]

    def __str__(self) -> str:
        return f"{self.name} (CVR {self.cvr})" if self.name else f"CVR {self.cvr}"


class TrustedCA(models.Model):
    """A CA certificate the portal trusts as the top of a chain (a trust anchor, normally a root).

    A certificate counts as verified only when signatures lead from it to one of these (certificates.trust).
    Seeded with the OCES3 test and production roots; settings and administrators add more.
    """

    name = models.CharField(max_length=255)
    subject_dn = models.TextField("subject")
    fingerprint_sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    not_after = models.DateTimeField("valid to")
    pem = models.TextField("certificate (PEM)")
    source = models.CharField(max_length=16, choices=TrustSource.choices, default=TrustSource.ADDED)
    # A shipped root that an administrator removed stays as a row with enabled off, so that seeding it
    # again at the next migrate (certificates.trust.install_builtin_roots) does not bring it back.
    enabled = models.BooleanField(default=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "trusted CA"
        verbose_name_plural = "trusted CAs"

    def __str__(self) -> str:
        return self.name

    @property
    def fingerprint_display(self) -> str:
        return _colon_pairs(self.fingerprint_sha256)


class CertificateQuerySet(models.QuerySet["Certificate"]):
    """Derived states (expired, expiring) are computed by the database from not_after, never stored."""

    def expired(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        return self.filter(not_after__lte=now or timezone.now())

    def unexpired(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        return self.filter(not_after__gt=now or timezone.now())

    def expiring_within(self, days: int, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Unexpired certificates whose not_after falls within `days` from now."""
        now = now or timezone.now()
        return self.filter(not_after__gt=now, not_after__lte=now + dt.timedelta(days=days))

    def with_status(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Annotate `status` (a Status value): blocked, else expired, else superseded, else not yet
        valid, else expiring, else valid (the conditions exclude each other: see _status_condition)."""
        now = now or timezone.now()
        return self.annotate(
            status=Case(
                *[When(_status_condition(status, now), then=Value(status.value)) for status in Status],
                output_field=models.CharField(),
            )
        )

    def of_status(self, status: Status | str, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Certificates whose `with_status` would be `status`, as plain column conditions (index-friendly)."""
        return self.filter(_status_condition(Status(status), now or timezone.now()))

    def due_for_renewal(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Active, auto-renewing certificates with a key whose renewal is due (renew_at, indexed), with no
        open renewal order and no renewal that failed recently (a failure waits for a person, or for the
        retry interval, instead of failing again at every sweep)."""
        now = now or timezone.now()
        retry_failed_after = now - dt.timedelta(hours=settings.TRUSTVIEW_FAILED_RENEWAL_RETRY_HOURS)
        renewals = Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW)
        return (
            self.filter(state=LifecycleState.ACTIVE, auto_renew=True, renew_at__lte=now, not_after__gt=now)
            .exclude(private_key_encrypted="")
            .filter(~Exists(renewals.filter(state__in=OPEN_ORDER_STATES)))
            .filter(~Exists(renewals.filter(state=OrderState.FAILED, completed_at__gt=retry_failed_after)))
        )

    def for_listing(self) -> CertificateQuerySet:
        """Leave the large columns (PEM, chain, key) in the database; say only whether a key is held."""
        return self.defer("pem", "chain_pem", "private_key_encrypted", "subject_dn", "issuer_dn").annotate(
            holds_key=ExpressionWrapper(~Q(private_key_encrypted=""), output_field=models.BooleanField())
        )

    def with_renewal_state(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Annotate `renewing` (an open renewal order) and `renewal_failing` (see `renewal_failing`)."""
        return self.annotate(renewing=_renewing(), renewal_failing=_renewal_failing(now or timezone.now()))

    def renewing(self) -> CertificateQuerySet:
        """Certificates with a renewal order in progress."""
        return self.filter(_renewing())

    def renewal_failing(self, now: dt.datetime | None = None) -> CertificateQuerySet:
        """Active certificates whose renewal is retrying after errors, or failed in the last 30 days."""
        return self.filter(_renewal_failing(now or timezone.now()), state=LifecycleState.ACTIVE)

    def search(self, text: str) -> CertificateQuerySet:
        """Match a common name (part of it), a CVR, or the start of a serial number or fingerprint."""
        text = text.strip()
        if not text:
            return self
        condition = Q(subject_cn__icontains=text)
        if text.isdigit() and len(text) == 8:
            condition |= Q(cvr=text)
        compact = "".join(text.split()).replace(":", "").upper()
        if compact and all(ch in "0123456789ABCDEF" for ch in compact):
            condition |= Q(serial_number__startswith=compact) | Q(fingerprint_sha256__startswith=compact)
        return self.filter(condition)


def _renewing() -> Exists:
    return Exists(
        Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW, state__in=OPEN_ORDER_STATES)
    )


def _renewal_failing(now: dt.datetime) -> Exists:
    return Exists(
        Order.objects.filter(certificate=OuterRef("pk"), kind=OrderKind.RENEW).filter(
            Q(state__in=OPEN_ORDER_STATES, attempts__gt=0)
            | Q(state=OrderState.FAILED, completed_at__gt=now - dt.timedelta(days=30))
        )
    )


def _status_condition(status: Status, now: dt.datetime) -> Q:
    """The columns that make a certificate have `status` at `now` (each excludes the ones before it)."""
    soon = now + dt.timedelta(days=settings.TRUSTVIEW_EXPIRING_DAYS)
    live = ~Q(state=LifecycleState.BLOCKED) & Q(not_after__gt=now)
    return {
        Status.BLOCKED: Q(state=LifecycleState.BLOCKED),
        Status.EXPIRED: ~Q(state=LifecycleState.BLOCKED) & Q(not_after__lte=now),
        Status.SUPERSEDED: live & Q(state=LifecycleState.SUPERSEDED),
        Status.NOT_YET_VALID: live & Q(state=LifecycleState.ACTIVE, not_before__gt=now),
        Status.EXPIRING: live & Q(state=LifecycleState.ACTIVE, not_before__lte=now, not_after__lte=soon),
        Status.VALID: live & Q(state=LifecycleState.ACTIVE, not_before__lte=now, not_after__gt=soon),
    }[status]


class Certificate(models.Model):
    """One X.509 certificate in the inventory, parsed once into the columns that queries need.

    The private key, when the portal holds one, is stored encrypted (certificates.vault). A certificate
    without a key is monitor-only. Renewals form a chain through `renewed_from` (reverse: `replaced_by`).
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="certificates"
    )
    subject_cn = models.CharField("common name", max_length=255, db_index=True)
    subject_dn = models.TextField("subject")
    subject_organization = models.CharField("organisation name", max_length=255, blank=True)
    issuer_cn = models.CharField("issuer common name", max_length=255)
    issuer_dn = models.TextField("issuer")
    serial_number = models.CharField(max_length=64, db_index=True)
    fingerprint_sha256 = models.CharField("SHA-256 fingerprint", max_length=64, unique=True)
    not_before = models.DateTimeField("valid from")
    not_after = models.DateTimeField("valid to", db_index=True)
    key_algorithm = models.CharField(max_length=32)
    key_size = models.PositiveIntegerField(null=True, blank=True)
    signature_algorithm = models.CharField(max_length=64)
    is_ca = models.BooleanField("CA certificate", default=False)
    subject_key_id = models.CharField(max_length=128, blank=True, db_index=True)
    authority_key_id = models.CharField(max_length=128, blank=True)
    subject_alt_names = models.JSONField("subject alternative names", default=list, blank=True)
    policies = models.JSONField("certificate policies", default=list, blank=True)
    ocsp_urls = models.JSONField("OCSP addresses", default=list, blank=True)
    crl_urls = models.JSONField("CRL addresses", default=list, blank=True)

    cvr = models.CharField("CVR", max_length=8, blank=True, db_index=True)
    oces_uuid = models.UUIDField("certificate UUID", null=True, blank=True, db_index=True)
    environment = models.CharField(max_length=16, choices=CertEnvironment.choices, blank=True, db_index=True)
    oces_type = models.CharField("OCES type", max_length=16, choices=OcesType.choices, blank=True)

    pem = models.TextField("certificate (PEM)")
    chain_pem = models.TextField("chain (PEM)", blank=True)
    private_key_encrypted = models.TextField(blank=True, editable=False)
    # Whether signatures lead from this certificate to a TrustedCA (None: not checked yet), and if not,
    # why not (an English sentence of certificates.trust, translated where it is shown).
    chain_verified = models.BooleanField(null=True, blank=True, default=None, editable=False)
    trust_root = models.ForeignKey(
        TrustedCA,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="certificates",
        editable=False,
    )
    verification_error = models.CharField(max_length=255, blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORT)
    state = models.CharField(
        max_length=16, choices=LifecycleState.choices, default=LifecycleState.ACTIVE, db_index=True
    )
    auto_renew = models.BooleanField(default=True)
    renew_before = models.DurationField(
        default=DEFAULT_RENEW_BEFORE, help_text="Renew this long before expiry (days as D, or D HH:MM:SS)."
    )
    # Derived from the validity and renew_before on every save, and indexed: "what is due" is one
    # range scan, whatever the inventory size.
    renew_at = models.DateTimeField("renewal due", null=True, blank=True, db_index=True, editable=False)
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["not_after", "id"]
        indexes = [models.Index(fields=["state", "not_after"], name="cert_state_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.subject_cn} ({self.serial_number})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.renew_at = renewal_due_at(self.not_before, self.not_after, self.renew_before)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "renew_before" in update_fields:
            kwargs["update_fields"] = {*update_fields, "renew_at"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("certificates:detail", args=[self.pk])

    @property
    def has_private_key(self) -> bool:
        """Whether the portal holds this certificate's private key (otherwise it is monitor-only)."""
        return bool(self.private_key_encrypted)

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until not_after (negative once expired)."""
        return (self.not_after - (now or timezone.now())).days

    @property
    def serial_number_display(self) -> str:
        return _colon_pairs(self.serial_number)

    @property
    def fingerprint_display(self) -> str:
        return _colon_pairs(self.fingerprint_sha256)


def _colon_pairs(hex_text: str) -> str:
    return ":".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


class Event(models.Model):
    """One entry of a certificate's history. Append-only: rows are written once and never changed."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150, help_text="Who acted, kept even if the user is later deleted ('scheduler' for jobs)."
    )
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["certificate", "-created_at"], name="event_cert_time_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def text(self) -> str:
        """The message in the reader's language. `message` is stored as an English template with
        %(name)s fields filled from `detail`; text values that are themselves catalogue sentences (a CA's
        error, say) are translated too."""
        values = {
            key: gettext(value) if isinstance(value, str) and value else value
            for key, value in self.detail.items()
        }
        try:
            return gettext(self.message) % values
        except (KeyError, ValueError, TypeError):
            return self.message


class OrderQuerySet(models.QuerySet["Order"]):
    def open(self) -> OrderQuerySet:
        return self.filter(state__in=OPEN_ORDER_STATES)

    def due(self, now: dt.datetime | None = None) -> OrderQuerySet:
        """Open orders whose next step is due (their lease, if a worker had one, has run out)."""
        return self.open().filter(next_attempt_at__lte=now or timezone.now())


class Order(models.Model):
    """One request to a CA (issue or renew) and where it stands.

    The row is the truth: a lost task message or a killed worker only delays the next step, which the
    sweep finds by `next_attempt_at`. A worker claims a step by moving `next_attempt_at` forward with a
    conditional update (a lease), so two workers never take the same step.
    """

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="orders")
    kind = models.CharField(max_length=16, choices=OrderKind.choices, default=OrderKind.RENEW)
    state = models.CharField(max_length=16, choices=OrderState.choices, default=OrderState.PENDING)
    ca_order_id = models.CharField("CA order id", max_length=200, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    alerted = models.BooleanField(
        default=False, help_text="An administrator has been told this order is failing."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150)
    new_certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="order_state_due_idx")]
        constraints = [
            # Two clicks and the scheduler at the same moment make one renewal.
            models.UniqueConstraint(
                fields=["certificate"],
                condition=Q(kind="renew", state__in=["pending", "in_progress"]),
                name="one_open_renewal_per_certificate",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.certificate.subject_cn}: {self.get_state_display()}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ORDER_STATES


class ExpiryAlert(models.Model):
    """An expiry alert that was sent: one per (certificate, threshold), so none is sent twice, and a
    threshold crossed while the scheduler was down is still sent on its next run."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="expiry_alerts")
    threshold_days = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["certificate", "threshold_days"], name="one_alert_per_threshold")
        ]

    def __str__(self) -> str:
        return f"{self.certificate.subject_cn}: {self.threshold_days} days"


class NotificationSettings(models.Model):
    """Who receives alerts and at which thresholds, edited in the portal. One row; empty fields fall back to
    TRUSTVIEW_ALERT_EMAILS / TRUSTVIEW_ALERT_THRESHOLDS_DAYS from the environment."""

    recipients = models.JSONField(default=list, blank=True)
    thresholds_days = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "Notification settings"

    @classmethod
    def load(cls) -> NotificationSettings:
        """The one row (created empty on first use)."""
        row, _ = cls.objects.get_or_create(pk=1)
        return row


class SchedulerHeartbeat(models.Model):
    """When a scheduled job last finished, one row per job, so /readyz can tell a scheduler that runs from
    one that has stopped (beat down, no worker, broker down) without asking Celery."""

    RENEWAL_SWEEP = "renewal-sweep"

    name = models.CharField(max_length=100, unique=True)
    last_success_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.last_success_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def record(cls, name: str) -> None:
        """Note that the job NAME has just finished successfully."""
        cls.objects.update_or_create(name=name, defaults={"last_success_at": timezone.now()})
