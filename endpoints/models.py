"""Where certificates are in use: TLS endpoints and what each served, problems found there, and the places
where a certificate is registered (the registration checklist)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from certificates.choices import LifecycleState
from certificates.models import Certificate, Organization, organisation_limit

from .choices import ErrorCode, ProblemKind, Protocol


class EndpointQuerySet(models.QuerySet["Endpoint"]):
    def for_user(self, user: AbstractUser | AnonymousUser) -> EndpointQuerySet:
        """The endpoints `user` may see and scan: none without the view permission; with an organisation
        limit, only those of the user's organisations (an endpoint of no organisation is for unlimited
        users only). Every page and action starts here."""
        if not user.has_perm("endpoints.view_endpoint"):
            return self.none()
        limit = organisation_limit(user)
        return self if limit is None else self.filter(organization__in=limit)

    def due(self, now: dt.datetime | None = None) -> EndpointQuerySet:
        """Endpoints whose next scan is due (next_scan_at, indexed)."""
        return self.filter(next_scan_at__lte=now or timezone.now())

    def not_deployed(self) -> EndpointQuerySet:
        """Renewed but not deployed: the endpoint's last answer was a certificate that has since been
        superseded by its renewal."""
        return self.filter(certificate__state=LifecycleState.SUPERSEDED)


class Endpoint(models.Model):
    """A TLS service to watch: host, port, the name sent as SNI (and matched), and how TLS starts."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="endpoints"
    )
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    sni = models.CharField("SNI name", max_length=253, blank=True)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.TLS)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    next_scan_at = models.DateTimeField(default=timezone.now, db_index=True)
    # When a person last pressed "Scan now" (or the API's scan): one such scan per endpoint per
    # services.MANUAL_SCAN_GAP, so a loop of requests cannot keep the portal knocking on a server.
    manual_scan_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the last scan saw, kept on the row for lists and the dashboard.
    last_scan = models.ForeignKey("Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    certificate = models.ForeignKey(
        Certificate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The certificate the endpoint served at its last successful scan.",
    )

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["host", "port", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "host", "port", "sni", "protocol"], name="one_endpoint_per_address"
            )
        ]

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{where} ({self.sni})" if self.sni else where

    def get_absolute_url(self) -> str:
        return reverse("endpoints:detail", args=[self.pk])

    @property
    def expected_name(self) -> str:
        """The name the served certificate must be for: the SNI name, else the host."""
        return self.sni or self.host


class Scan(models.Model):
    """One look at an endpoint: what it served (leaf, chain, TLS version) and how that was judged, or why
    nothing was seen (error code and sentence)."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="scans")
    scanned_at = models.DateTimeField(default=timezone.now)
    address = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(default=0)
    tls_version = models.CharField("TLS version", max_length=16, blank=True)
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="scans"
    )
    served_pem = models.TextField("served certificates (PEM)", blank=True)
    subject_cn = models.CharField(max_length=255, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    fingerprint_sha256 = models.CharField(max_length=64, blank=True)
    name_matches = models.BooleanField(null=True)
    chain_complete = models.BooleanField(
        null=True, help_text="The served chain alone leads to a trusted root (no issuer missing)."
    )
    chain_verified = models.BooleanField(null=True)
    verification_error = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=16, choices=ErrorCode.choices, blank=True)
    error = models.CharField(max_length=255, blank=True)
    error_detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-scanned_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-scanned_at"], name="scan_endpoint_time_idx"),
            models.Index(fields=["scanned_at"], name="scan_time_idx"),  # pruning old scans
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} at {self.scanned_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return not self.error_code

    @property
    def error_text(self) -> str:
        """The error sentence in the reader's language (stored in English with its fields)."""
        try:
            return gettext(self.error) % self.error_detail
        except (KeyError, ValueError, TypeError):
            return self.error


class Sighting(models.Model):
    """That an endpoint served a certificate, first and last seen: a certificate's page lists these."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="sightings")
    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="sightings")
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "certificate"], name="one_sighting_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.certificate.subject_cn} on {self.endpoint}"


class Problem(models.Model):
    """Something wrong at an endpoint, from the scan that first saw it until the scan that no longer does.

    At most one open problem of a kind per endpoint (a constraint). A person is told once, when it is due
    (`due_at`: at once, or for a superseded certificate after the grace period), and once when it
    clears; each is claimed with a conditional update, so two runs never send the same e-mail.
    """

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="problems")
    kind = models.CharField(max_length=24, choices=ProblemKind.choices)
    certificate = models.ForeignKey(
        Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(default=timezone.now)
    alerted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cleared_told_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(
                fields=["due_at"], condition=Q(alerted_at=None, closed_at=None), name="problem_due_idx"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "kind"], condition=Q(closed_at=None), name="one_open_problem_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.get_kind_display()}"


class RegistrationItem(models.Model):
    """One place where a certificate is registered (Skatteforvaltningen's TastSelv Erhverv,
    Serviceplatformen...). Open until a person ticks it off; a renewal copies the places of the old
    certificate to the new one as open items, to register the new certificate there too."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="registrations")
    place = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["place", "id"]
        constraints = [
            models.UniqueConstraint(fields=["certificate", "place"], name="one_registration_per_place")
        ]

    def __str__(self) -> str:
        return f"{self.place} ({self.certificate.subject_cn})"

    @property
    def done(self) -> bool:
        return self.done_at is not None


class RegistrationReminder(models.Model):
    """That a certificate's open registration items were reminded of on a day: one row per (certificate,
    day), claimed before sending, so each certificate is reminded at most once a day, and a checklist made
    by a renewal is reminded of at once rather than at the next daily run."""

    certificate = models.ForeignKey(Certificate, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "day"], name="one_reminder_per_certificate_and_day"
            )
        ]

    def __str__(self) -> str:
        return f"Registration reminder {self.day} ({self.certificate_id})"
