"""What the accounts app stores besides Django's users and groups."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models

from certificates.models import Organization


class OrganisationLimit(models.Model):
    """Limits a user to the certificates of some organisations (CVR): every page, count, chart, action
    and import then covers only those (certificates.models.organisation_limit reads this row by its
    related name). A user without this row is not limited; one with an empty row sees nothing."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organisation_limit"
    )
    organizations = models.ManyToManyField(Organization, blank=True, related_name="+")

    def __str__(self) -> str:
        return f"{self.user}: {', '.join(o.cvr for o in self.organizations.all()) or 'no organisation'}"


def limit_to_organisations(user: User, organizations: list[Organization] | None) -> None:
    """Limit `user` to these organisations; None (or none chosen) lifts the limit."""
    if not organizations:
        OrganisationLimit.objects.filter(user=user).delete()
        return
    limit, _ = OrganisationLimit.objects.get_or_create(user=user)
    limit.organizations.set(organizations)
