"""Template context for every page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from . import alerts


def alert_recipients(request: HttpRequest) -> dict[str, Any]:
    """`alerts_reach_nobody` for those who can fix it (change_notificationsettings): true while no alert
    has anybody to go to, so base.html shows them a banner on every page."""
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("certificates.change_notificationsettings"):
        return {}
    return {"alerts_reach_nobody": not alerts.recipients()}
