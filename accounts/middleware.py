"""Two-factor login: the session counts only once the code is given (after django_otp's OTPMiddleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from . import audit
from .tokens import bearer_token, usable_token
from .two_factor import confirmed_device, must_set_up

View = TypeVar("View", bound=Callable[..., Any])


def two_factor_exempt(view: View) -> View:
    """Mark a view that a user who has not yet given their code may use (the code step, logging out)."""
    view.two_factor_exempt = True  # type: ignore[attr-defined]
    return view


def two_factor_setup(view: View) -> View:
    """Mark the set-up page: a user who must set up two-factor login may use it (and nothing else)."""
    view.two_factor_setup = True  # type: ignore[attr-defined]
    return view


class TwoFactorMiddleware:
    """Sends a logged-in user who has a confirmed device but has not given a code in this session to the
    code step, and, with TRUSTVIEW_REQUIRE_2FA, a user whose role can download private keys and who has
    no device to the set-up page. Public views (@login_not_required) and exempt views are let through;
    static files are served before any view (WhiteNoise)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or user.is_verified():  # type: ignore[attr-defined]  # django_otp.middleware.OTPMiddleware
            return None
        # A public view marked `two_factor_for_sessions` (/metrics: open to allowed scrapers) still takes a
        # logged-in user through the code step, like any page.
        public = not getattr(view_func, "login_required", True)
        if (public and not getattr(view_func, "two_factor_for_sessions", False)) or getattr(
            view_func, "two_factor_exempt", False
        ):
            return None
        if confirmed_device(user) is not None:
            return redirect_to_login(request.get_full_path(), reverse("two-factor-verify"))
        if must_set_up(user) and not getattr(view_func, "two_factor_setup", False):
            return redirect_to_login(request.get_full_path(), reverse("two-factor"))
        return None


class AuditRequestMiddleware:
    """Lets the audit log know the request being answered, so an entry written by a signal receiver (a
    private key downloaded, a certificate blocked) records the address it came from, and the API token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit.answering(request):
            return self.get_response(request)


class BearerTokenMiddleware:
    """`Authorization: Bearer <token>` for the views outside the API that a machine reads (a view marked
    `accepts_bearer_token`, such as /metrics, which certificates marks without knowing accounts): the
    request acts as the token's user, with their role and organisation limits, as in the API. An unknown,
    revoked or expired token gets 401, never the anonymous answer. A token was made from a verified
    session or by an administrator's command, so it takes no two-factor step (as in the API)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not getattr(view_func, "accepts_bearer_token", False):
            return None
        token = bearer_token(request)
        if token is None:
            return None
        row = usable_token(token)
        if row is None:
            response = HttpResponse(
                _(
                    "The API token is unknown, revoked or expired, its user is no longer active, or the "
                    "user's role or organisations changed since it was made (make a new token)."
                )
                + "\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="trustview"'
            return response
        user = row.user
        user.is_verified = lambda: True  # type: ignore[attr-defined]  # no two-factor step for a token
        request.user = user
        # The audit log names the token (its prefix) beside the user, as for the API.
        setattr(request, audit.API_TOKEN_ATTRIBUTE, row.prefix)
        return None
