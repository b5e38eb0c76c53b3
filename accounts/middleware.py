"""Two-factor login: the session counts only once the code is given (after django_otp's OTPMiddleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from . import audit
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
        if not getattr(view_func, "login_required", True) or getattr(view_func, "two_factor_exempt", False):
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
