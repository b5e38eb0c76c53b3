"""Writing the audit log (accounts.AuditEntry): one function that every view, command and signal
receiver calls, so an entry always has the same shape. Never pass it a password or a one-time code."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from .choices import AuditAction
from .models import AuditEntry
from .roles import Role, role_of

# The request being answered, for entries written where no request is at hand (a signal receiver: a key
# download or a block, which the certificates app writes to its history). Set by AuditRequestMiddleware.
_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
# The attribute on a request that names the API token it came with (set by the API's authentication).
API_TOKEN_ATTRIBUTE = "trustview_api_token_prefix"  # noqa: S105  (an attribute name, not a secret)

LABEL_LENGTH = AuditEntry._meta.get_field("actor_label").max_length or 150
TEXT_LENGTH = 300  # longest text value kept in `detail` (a username typed at the login, say)


def clean_text(value: str, length: int = TEXT_LENGTH) -> str:
    """Text from outside made safe to store: no NUL (PostgreSQL refuses it), at most `length` characters."""
    return value.replace("\x00", "")[:length]


def remote_addr(request: HttpRequest | None) -> str | None:
    """The client's address as django-axes sees it (TRUSTVIEW_CLIENT_IP_HEADER), if it is an address."""
    if request is None:
        return None
    address = getattr(request, "axes_ip_address", None)
    if address is None:
        from axes.helpers import get_client_ip_address

        address = get_client_ip_address(request)
    try:
        return str(ipaddress.ip_address(str(address)))
    except ValueError:
        return None


@contextmanager
def answering(request: HttpRequest) -> Iterator[None]:
    """While `request` is answered, entries written without a request still get its address (and the API
    token it came with)."""
    reset = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(reset)


def record(
    action: AuditAction,
    *,
    actor: User | AnonymousUser | None = None,
    label: str | None = None,
    request: HttpRequest | None = None,
    **detail: Any,
) -> AuditEntry:
    """Append one entry. `actor` is who acted (None: nobody logged in, or the system); `label` names them
    when there is no user (the username typed at a failed login, "scheduler"); `detail` holds facts
    (usernames, roles, fingerprints), JSON-serialisable."""
    user = actor if actor is not None and actor.is_authenticated else None
    if label is None:
        label = user.get_username() if user is not None else ""
    if request is None:
        request = _current_request.get()
    token_prefix = getattr(request, API_TOKEN_ATTRIBUTE, None)
    if token_prefix:
        detail.setdefault("api_token", token_prefix)
    detail = {key: clean_text(value) if isinstance(value, str) else value for key, value in detail.items()}
    return AuditEntry.objects.create(
        action=action,
        actor=user,
        actor_label=clean_text(label, LABEL_LENGTH),
        detail=detail,
        remote_addr=remote_addr(request),
    )


def user_state(user: AbstractBaseUser | None) -> tuple[Role | None, bool] | None:
    """What a user change is compared against: the user's role and whether they may log in (None for a
    user not yet created). Take it before a form or command changes the user."""
    if user is None or user.pk is None:
        return None
    return role_of(user), bool(user.is_active)


def record_user_saved(
    user: AbstractBaseUser,
    before: tuple[Role | None, bool] | None,
    *,
    actor: User | AnonymousUser | None = None,
    label: str | None = None,
    request: HttpRequest | None = None,
) -> None:
    """Record what saving a user changed: created, role changed, deactivated or reactivated."""
    role = role_of(user)

    def note(action: AuditAction, **detail: Any) -> None:
        record(action, actor=actor, label=label, request=request, user=user.get_username(), **detail)

    if before is None:
        note(AuditAction.USER_CREATED, role=role.value if role else "")
        return
    role_before, active_before = before
    if role != role_before:
        note(
            AuditAction.ROLE_CHANGED,
            old_role=role_before.value if role_before else "",
            new_role=role.value if role else "",
        )
    if active_before and not user.is_active:
        note(AuditAction.USER_DEACTIVATED)
    elif not active_before and user.is_active:
        note(AuditAction.USER_REACTIVATED)
