"""The trust store page: administrators list, add and remove the CAs that certificates must chain to."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .forms import TrustedCAForm
from .models import TrustedCA
from .trust_admin import ReverifyResult, TrustStoreError, add_trusted_ca, remove_trusted_ca


@permission_required("certificates.change_trustedca", raise_exception=True)
def trust_store(request: HttpRequest) -> HttpResponse:
    form = TrustedCAForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            row, result = add_trusted_ca(form.cleaned_data["certificate"].read(), request.user)  # type: ignore[arg-type]
        except TrustStoreError as error:
            form.add_error("certificate", str(error))
        else:
            messages.success(request, _("“%(name)s” is now trusted.") % {"name": row.name} + _summary(result))
            return redirect("certificates:trust-store")
    rows = TrustedCA.objects.filter(enabled=True).annotate(verified=Count("certificates"))
    return render(
        request,
        "certificates/trust_store.html",
        {"form": form, "rows": rows},
        status=400 if form.errors else 200,
    )


@require_POST
@permission_required("certificates.delete_trustedca", raise_exception=True)
def trust_remove(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(TrustedCA, pk=pk, enabled=True)
    try:
        result = remove_trusted_ca(row, request.user)  # type: ignore[arg-type]
    except TrustStoreError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("“%(name)s” is no longer trusted.") % {"name": row.name} + _summary(result)
        )
    return redirect("certificates:trust-store")


def _summary(result: ReverifyResult) -> str:
    text = _("Checked again: %(checked)s; now verified: %(verified)s; no longer verified: %(unverified)s.")
    return " " + text % {
        "checked": result.checked,
        "verified": result.newly_verified,
        "unverified": result.newly_unverified,
    }
