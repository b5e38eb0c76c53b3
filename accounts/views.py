"""Users and roles in the portal, and the sentence a locked-out login gets."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _

from . import audit, tokens
from .forms import UserForm
from .roles import Role, role_of, set_role


def locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict[str, Any]
) -> HttpResponse:
    """django-axes calls this instead of logging in once a user and address have failed too often."""
    until = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    lockout = _(
        "Too many failed logins for this user from your address. Try again after %(time)s, or ask an "
        "administrator to unlock the login."
    ) % {"time": time_format(until, "H:i")}
    context = {"form": AuthenticationForm(request), "lockout": lockout}
    return render(request, "registration/login.html", context, status=429)


@permission_required("auth.view_user", raise_exception=True)
def user_list(request: HttpRequest) -> HttpResponse:
    users = (
        get_user_model()
        .objects.prefetch_related("groups", "organisation_limit__organizations")
        .order_by("username")
    )
    rows = [(user, role_of(user)) for user in users]
    return render(request, "accounts/user_list.html", {"rows": rows})


@permission_required("auth.view_user", raise_exception=True)
def user_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create a user, or change one's e-mail, role or whether they may log in."""
    needed = "auth.change_user" if pk is not None else "auth.add_user"
    if not request.user.has_perm(needed):
        raise PermissionDenied
    user = get_object_or_404(get_user_model(), pk=pk) if pk is not None else None
    if user is not None and user.is_superuser and not request.user.is_superuser:
        raise PermissionDenied  # an administrator cannot demote or lock out a superuser
    before = audit.user_state(user)  # the form changes `user` as it validates
    form = UserForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        if (
            user is not None
            and user.pk == request.user.pk
            and (form.cleaned_data["role"] != Role.ADMINISTRATOR or not form.cleaned_data["is_active"])
        ):
            form.add_error("role", _("You cannot remove your own administrator role or deactivate yourself."))
        else:
            with transaction.atomic():
                saved = form.save()
                set_role(saved, form.cleaned_data["role"])
                audit.record_user_saved(saved, before, actor=request.user, request=request)
                if not saved.is_active:
                    tokens.revoke_all(saved, actor=request.user, request=request)  # type: ignore[arg-type]
            messages.success(request, _("User “%(name)s” saved.") % {"name": saved.get_username()})
            return redirect("accounts:users")
    return render(
        request, "accounts/user_form.html", {"form": form, "edited": user}, status=400 if form.errors else 200
    )
