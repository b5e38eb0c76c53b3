"""The "Issue OCES certificate" page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .errors import MitIDError
from .forms import IssueForm, ProfileForm
from .models import CertificateProfile
from .services import issue_certificate


@sensitive_post_parameters("pin")
@never_cache
@permission_required("mitid.issue_certificate", raise_exception=True)
def issue(request: HttpRequest) -> HttpResponse:
    form = IssueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = issue_certificate(
                environment=form.cleaned_data["environment"],
                reference_number=form.cleaned_data["reference_number"],
                pin=form.cleaned_data["pin"],
                actor=request.user,
            )
        except MitIDError as error:
            field = {"invalid_pin": "pin", "pin_locked": "pin", "unknown_reference": "reference_number"}.get(
                error.code
            )
            form.add_error(field, error.sentence)
        else:
            certificate = outcome.certificate
            if outcome.created:
                messages.success(
                    request,
                    _(
                        "Issued “%(name)s”, valid to %(date)s. Its private key is stored encrypted; "
                        "download it below when you need it."
                    )
                    % {"name": certificate.subject_cn, "date": f"{certificate.not_after:%Y-%m-%d}"},
                )
            else:
                messages.info(
                    request, _("This certificate was already issued with this reference number and PIN.")
                )
            return redirect(certificate)
    return render(request, "mitid/issue.html", {"form": form}, status=400 if form.errors else 200)


@permission_required("mitid.view_certificateprofile", raise_exception=True)
def profile_list(request: HttpRequest) -> HttpResponse:
    profiles = (
        CertificateProfile.objects.for_user(request.user)
        .select_related("organization")
        .annotate(certificate_count=Count("certificates"))
        .order_by("name")
    )
    return render(request, "mitid/profile_list.html", {"profiles": profiles})


@permission_required("mitid.view_certificateprofile", raise_exception=True)
def profile_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """A profile's page: anyone who may see profiles reads it; only those who may change (or add) one
    can save, and a new profile's form is only for those who may add."""
    needed = "mitid.change_certificateprofile" if pk is not None else "mitid.add_certificateprofile"
    if (request.method == "POST" or pk is None) and not request.user.has_perm(needed):
        raise PermissionDenied
    profile = (
        get_object_or_404(CertificateProfile.objects.for_user(request.user), pk=pk)
        if pk is not None
        else None
    )
    form = ProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("Profile “%(name)s” saved.") % {"name": saved.name})
        return redirect("mitid:profiles")
    certificates = profile.certificates.order_by("-not_after") if profile else []
    return render(
        request,
        "mitid/profile_form.html",
        {"form": form, "profile": profile, "certificates": certificates},
        status=400 if form.errors else 200,
    )
