"""The API tokens page: a user makes, sees and revokes their own tokens (/account/api-tokens/)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import tokens
from .forms import ApiTokenForm
from .models import ApiToken, access_of


@never_cache
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST makes one and shows it on this answer only (never in a redirect,
    a message or a URL, which would keep it somewhere)."""
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        _row, new_token = tokens.create_token(
            request.user,  # type: ignore[arg-type]
            form.cleaned_data["name"],
            expires_days=form.cleaned_data["expires_days"],
            actor=request.user,  # type: ignore[arg-type]
            request=request,
        )
        form = ApiTokenForm()
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": ApiToken.objects.filter(user=request.user.pk),
        # A token whose `access` differs has stopped (accounts.models.ApiToken); asked once, not per row.
        "access": access_of(request.user),  # type: ignore[arg-type]
    }
    return render(request, "accounts/api_tokens.html", context, status=400 if form.errors else 200)


@require_POST
def revoke_api_token(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's own tokens (another user's is not found)."""
    row = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk, user=request.user.pk)
    if tokens.revoke_token(row, actor=request.user, request=request):  # type: ignore[arg-type]
        messages.success(request, _("The token “%(name)s” is revoked.") % {"name": row.name})
    return redirect("api-tokens")
