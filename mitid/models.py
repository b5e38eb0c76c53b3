"""MitID Erhverv certificate profiles, as created on the MitID Erhverv portal."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from certificates.choices import Environment
from certificates.models import Certificate, Organization, organisation_limit


class ProfileType(models.TextChoices):
    ORGANISATION = "organisation", _("Organisation")
    SYSTEM = "system", _("System")
    EMPLOYEE = "employee", _("Employee")


def normalise_reference(reference_number: str) -> str:
    """Reference numbers are compared without spaces and dashes (as MitID Erhverv does)."""
    return "".join(ch for ch in reference_number if ch not in " -\t").upper()


class CertificateProfileQuerySet(models.QuerySet["CertificateProfile"]):
    def for_user(self, user: AbstractUser | AnonymousUser) -> CertificateProfileQuerySet:
        """The profiles `user` may see: those of their organisations when they are limited to some."""
        if not user.has_perm("mitid.view_certificateprofile"):
            return self.none()
        limit = organisation_limit(user)
        return self if limit is None else self.filter(organization__in=limit)


class CertificateProfile(models.Model):
    """A certificate profile on MitID Erhverv: it yields a reference number and a one-time PIN.

    The PIN is never stored. The certificates issued (and later renewed) under the profile are linked,
    so the portal knows which profile a certificate belongs to.
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="mitid_profiles"
    )
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=ProfileType.choices, default=ProfileType.SYSTEM)
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.TEST)
    reference_number = models.CharField(max_length=64, help_text=_("As shown in MitID Erhverv."))
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    certificates = models.ManyToManyField(Certificate, blank=True, related_name="mitid_profiles")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CertificateProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("issue_certificate", "Can issue OCES certificates with a PIN and reference number")]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "reference_number"], name="profile_reference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_environment_display()}, {self.reference_number})"

    def save(self, *args: object, **kwargs: object) -> None:
        self.reference_number = normalise_reference(self.reference_number)
        super().save(*args, **kwargs)  # type: ignore[arg-type]
