"""Asking an administrator without an e-mail address for one after they log in, while alerts reach
nobody (no DJANGO_SUPERUSER_EMAIL, no recipient set): a small form, skippable, asked once per login;
the banner that alerts reach nobody stays until a recipient exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from certificates import alerts
from certificates.models import NotificationSettings

SESSION_KEY = "ask_for_email"


def should_ask(user: AbstractUser | AnonymousUser) -> bool:
    """An administrator (who may set who receives alerts) without an address, while alerts reach nobody."""
    return (
        user.is_authenticated
        and not getattr(user, "email", "")
        and user.has_perm("certificates.change_notificationsettings")
        and not alerts.recipients()
    )


class OwnEmailForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Your e-mail address"),
        help_text=gettext_lazy(
            "Alerts about certificates (expiry, failing renewals) go here while no other recipient is set."
        ),
    )


def save_own_email(user: Any, address: str) -> None:
    """Store the user's address and make sure alerts reach it: a superuser receives them while no
    recipient is set (certificates.alerts.recipients); anyone else is added to the recipients."""
    user.email = address
    user.save(update_fields=["email"])
    if not user.is_superuser and address not in alerts.recipients():
        row = NotificationSettings.load()
        row.recipients = [*row.recipients, address]
        row.save()


def own_email(request: HttpRequest) -> HttpResponse:
    """The form; 'Skip for now' goes on to where the user was going."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = ""
    target = target or reverse("home")
    form = OwnEmailForm(request.POST or None, initial={"email": request.user.email})  # type: ignore[union-attr]
    if request.method == "POST" and form.is_valid():
        save_own_email(request.user, form.cleaned_data["email"])
        messages.success(
            request, _("Saved. Alerts go to %(address)s.") % {"address": form.cleaned_data["email"]}
        )
        return redirect(target)
    return render(
        request, "accounts/own_email.html", {"form": form, "next": target}, status=400 if form.errors else 200
    )


class AskForEmailMiddleware:
    """After a login that `accounts.receivers` marked (an administrator without an address while alerts
    reach nobody), the first page they open is the form instead, once; after the two-factor step."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        session = getattr(request, "session", None)
        if session is None or request.method != "GET" or not session.get(SESSION_KEY):
            return None
        if not getattr(view_func, "login_required", True) or view_func is own_email:
            return None
        del session[SESSION_KEY]  # asked once: skipping is allowed, the banner stays
        if not should_ask(request.user):
            return None
        return redirect(f"{reverse('own-email')}?next={request.get_full_path()}")
