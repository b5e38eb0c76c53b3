"""Two-factor login pages: set it up or remove it (/account/two-factor/), and the code step of a login."""

from __future__ import annotations

import django_otp
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from . import audit, two_factor
from .choices import AuditAction
from .middleware import two_factor_exempt, two_factor_setup
from .security_forms import CodeForm


def _next_url(request: HttpRequest, default: str) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure())
    return url if url and safe else default


@two_factor_setup
def setup(request: HttpRequest) -> HttpResponse:
    """Set up two-factor login (the secret is shown until a code confirms it), or remove it with a code."""
    device = two_factor.confirmed_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        try:
            if device is not None:
                two_factor.remove(device, code)
                request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
                audit.record(AuditAction.TWO_FACTOR_REMOVED, actor=request.user, request=request)
                messages.success(request, _("Two-factor login is off. You log in with your password alone."))
                return redirect("two-factor")
            device = two_factor.confirm(two_factor.pending_device(request.user), code)  # type: ignore[arg-type]
            django_otp.login(request, device)
            audit.record(AuditAction.TWO_FACTOR_ADDED, actor=request.user, request=request)
            messages.success(request, _("Two-factor login is on. From now on you log in with a code too."))
            return redirect(_next_url(request, settings.LOGIN_REDIRECT_URL))
        except two_factor.CodeRefused as refused:
            form.add_error("code", str(refused))
            if device is not None:  # while setting up, a wrong code risks nothing; removing, it might
                audit.record(AuditAction.LOGIN_FAILED, actor=request.user, request=request, step="two_factor")
    context = {
        "form": form,
        "device": device,
        "required": two_factor.must_set_up(request.user),
        "next": _next_url(request, ""),
    }
    if device is None:
        pending = two_factor.pending_device(request.user)  # type: ignore[arg-type]
        context.update(secret=two_factor.secret_text(pending), qr=two_factor.qr_svg(pending))
    return render(request, "accounts/two_factor.html", context, status=400 if form.errors else 200)


@two_factor_exempt
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of a login: the code from the user's app, before the session counts."""
    target = _next_url(request, settings.LOGIN_REDIRECT_URL)
    device = two_factor.confirmed_device(request.user)
    if device is None or request.user.is_verified():  # type: ignore[union-attr]
        return redirect(target)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = two_factor.verify(device, form.cleaned_data["code"])
        except two_factor.CodeRefused as refused:
            form.add_error("code", str(refused))
            audit.record(AuditAction.LOGIN_FAILED, actor=request.user, request=request, step="two_factor")
        else:
            request.session.cycle_key()  # a new session id for the now fully logged-in session
            django_otp.login(request, device)
            audit.record(AuditAction.TWO_FACTOR_VERIFIED, actor=request.user, request=request)
            return redirect(target)
    context = {"form": form, "next": _next_url(request, "")}
    return render(request, "registration/two_factor_verify.html", context, status=400 if form.errors else 200)
