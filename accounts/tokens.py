"""API tokens: making one (shown once), revoking it, and finding the user a Bearer token stands for.

A token is `tv_` and 43 random url-safe characters (256 bits). Only its SHA-256 digest is stored, so a
copy of the database opens nothing; a plain, unsalted hash is enough for a secret this long (it cannot
be guessed, unlike a password). `user_for_bearer` is the one question other parts ask: the REST API
(api.authentication) and any other endpoint that accepts tokens (the metrics endpoint, say).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from . import audit
from .choices import AuditAction
from .models import ApiToken, access_of

TOKEN_PREFIX = "tv_"  # noqa: S105  (a marker that says what the secret is, not a secret)
PREFIX_LENGTH = len(TOKEN_PREFIX) + 6  # what pages show of a token: enough to tell tokens apart
# last_used_at is written at most this often per token, so a busy script does not write at every call.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    user: User,
    name: str,
    *,
    expires_days: int | None = None,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> tuple[ApiToken, str]:
    """Make a token for `user` and return it with the token itself, which is shown once and kept nowhere.
    Writes the audit log (actor: who made it, the user themselves or an administrator's command)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + dt.timedelta(days=expires_days) if expires_days else None
    row = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:PREFIX_LENGTH],
        digest=digest(token),
        expires_at=expires_at,
        access=access_of(user),
    )
    audit.record(
        AuditAction.API_TOKEN_CREATED,
        actor=actor,
        label=None if actor is not None else "manage.py",
        request=request,
        user=user.get_username(),
        name=name,
        prefix=row.prefix,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return row, token


def revoke_token(row: ApiToken, *, actor: User, request: HttpRequest | None = None) -> bool:
    """Revoke a token at once (its next request is refused). False when it was already revoked."""
    if not ApiToken.objects.filter(pk=row.pk, revoked_at=None).update(revoked_at=timezone.now()):
        return False
    audit.record(
        AuditAction.API_TOKEN_REVOKED,
        actor=actor,
        request=request,
        user=row.user.get_username(),
        name=row.name,
        prefix=row.prefix,
    )
    return True


def revoke_all(user: User, *, actor: User, request: HttpRequest | None = None) -> int:
    """Revoke every token of `user` (when they are deactivated: reactivating them must not bring old
    tokens back). Returns how many were revoked; each is audited."""
    rows = ApiToken.objects.select_related("user").filter(user=user, revoked_at=None)
    return sum(revoke_token(row, actor=actor, request=request) for row in rows)


def user_for_token(token: str, now: dt.datetime | None = None) -> User | None:
    """The active user a token stands for, or None (unknown, revoked or expired token; inactive user; a
    user whose role or organisations changed since the token was made)."""
    row = usable_token(token, now)
    return row.user if row is not None else None


def usable_token(token: str, now: dt.datetime | None = None) -> ApiToken | None:
    """The stored token (with its user) that `token` is, if it still opens the API; its last use noted."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or timezone.now()
    row = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
    if row is None or not row.is_usable(now):
        return None
    # At most one write a minute per token: the conditional update does nothing in between.
    ApiToken.objects.filter(pk=row.pk).filter(
        Q(last_used_at=None) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return row


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is no such header."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def user_for_bearer(request: HttpRequest) -> User | None:
    """The user whose token the request carries as `Authorization: Bearer <token>`, or None."""
    token = bearer_token(request)
    return user_for_token(token) if token else None
