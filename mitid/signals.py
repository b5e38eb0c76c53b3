"""Keeping MitID's own records in step with the inventory."""

from __future__ import annotations

from typing import Any

from certificates.models import Certificate


def keep_renewal_in_profile(sender: object, old: Certificate, new: Certificate, **kwargs: Any) -> None:
    """A renewed certificate belongs to the same certificate profiles as the one it renews."""
    for profile in old.mitid_profiles.all():
        profile.certificates.add(new)
