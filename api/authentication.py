"""Who calls the API: a Bearer token (accounts.tokens), or the browser's session with its CSRF token."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.audit import API_TOKEN_ATTRIBUTE
from accounts.tokens import bearer_token, usable_token
from accounts.two_factor import confirmed_device, must_set_up


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`: the token's user, with their role and organisation limits."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        token = bearer_token(request._request)
        if token is None:
            return None
        row = usable_token(token) if token else None
        if row is None:
            raise AuthenticationFailed(
                _(
                    "The API token is unknown, revoked or expired, its user is no longer active, or the "
                    "user's role or organisations changed since it was made (make a new token)."
                )
            )
        # The audit log names the token (its prefix) beside the user for what this request does.
        setattr(request._request, API_TOKEN_ATTRIBUTE, row.prefix)
        return row.user, None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="trustview"'


class VerifiedSessionAuthentication(SessionAuthentication):
    """The logged-in browser session (CSRF checked on unsafe methods), but only once it counts: a user
    who still owes a two-factor code, or must set up two-factor login first, gets no further here than
    on the pages."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not user.is_verified() and (confirmed_device(user) is not None or must_set_up(user)):
            raise AuthenticationFailed(_("Complete the two-factor login on the portal first."))
        return result
