"""Endpoint pages and the registration checklist's actions. Views authorise (permission and the user's
organisations, through Endpoint.objects.for_user and Certificate.objects.for_user: another
organisation's endpoint is a 404), validate, call one service, and render or redirect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.choices import AuditAction
from certificates.models import Certificate

from . import services
from .forms import BulkForm, EndpointForm, PlaceForm
from .models import Endpoint, EndpointQuerySet, RegistrationItem
from .tasks import tell_on_commit


def _visible(request: HttpRequest) -> EndpointQuerySet:
    return Endpoint.objects.for_user(request.user).select_related("organization", "last_scan", "certificate")


@permission_required("endpoints.view_endpoint", raise_exception=True)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    endpoints = _visible(request)
    page = Paginator(endpoints, settings.TRUSTVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "endpoints/list.html", {"page": page, "title": _("Endpoints")})


@permission_required("endpoints.view_endpoint", raise_exception=True)
def not_deployed(request: HttpRequest) -> HttpResponse:
    """Renewed but not deployed: endpoints whose last answer was a superseded certificate."""
    endpoints = (
        Endpoint.objects.for_user(request.user)
        .not_deployed()
        .select_related("organization", "last_scan", "certificate")
    )
    page = Paginator(endpoints, settings.TRUSTVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "endpoints/list.html",
        {"page": page, "title": _("Renewed but not deployed"), "not_deployed": True},
    )


@permission_required("endpoints.add_endpoint", raise_exception=True)
def endpoint_add(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            spec = services.clean_spec(data["host"], data["port"], data["protocol"], data["sni"])
            endpoint, created = services.add_and_scan(
                spec, organization=data["organization"], actor=request.user
            )
        except services.EndpointInputError as error:
            form.add_error(None, str(error))
        else:
            if created:
                tell_on_commit()
                messages.success(request, _("Endpoint added and scanned."))
            else:
                messages.info(request, _("This endpoint is watched already."))
            return redirect(endpoint)
    return render(request, "endpoints/add.html", {"form": form}, status=400 if form.errors else 200)


@permission_required("endpoints.add_endpoint", raise_exception=True)
def endpoint_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkForm(request.POST or None, request.FILES or None, user=request.user)
    line_errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            outcome = services.add_bulk(
                form.cleaned_data["text"], organization=form.cleaned_data["organization"], actor=request.user
            )
        except services.BulkInputError as error:
            line_errors = error.errors
        except services.EndpointInputError as error:
            line_errors = [str(error)]
        else:
            messages.success(
                request,
                _(
                    "%(added)s endpoints added (first scans within a few minutes); "
                    "%(present)s were watched already."
                )
                % {"added": len(outcome.added), "present": len(outcome.present)},
            )
            return redirect("endpoints:list")
    status = 400 if (form.errors or line_errors) else 200
    return render(request, "endpoints/bulk.html", {"form": form, "line_errors": line_errors}, status=status)


@permission_required("endpoints.view_endpoint", raise_exception=True)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(_visible(request), pk=pk)
    visible = Certificate.objects.for_user(request.user)
    return render(
        request,
        "endpoints/detail.html",
        {
            "endpoint": endpoint,
            "scans": endpoint.scans.select_related("certificate")[:20],
            "problems": endpoint.problems.filter(closed_at=None),
            "sightings": endpoint.sightings.filter(certificate__in=visible).select_related("certificate"),
            "visible_ids": set(visible.filter(scans__endpoint=endpoint).values_list("pk", flat=True)),
        },
    )


@require_POST
@permission_required("endpoints.change_endpoint", raise_exception=True)
def endpoint_scan(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint.objects.for_user(request.user), pk=pk)
    try:
        scan = services.scan_now(endpoint)
    except services.ScanTooSoon as error:
        messages.info(request, str(error))
        return redirect(endpoint)
    tell_on_commit()
    if scan.ok:
        messages.success(request, _("Scanned: the endpoint answered."))
    else:
        messages.error(request, scan.error_text)
    return redirect(endpoint)


@require_POST
@permission_required("endpoints.delete_endpoint", raise_exception=True)
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint.objects.for_user(request.user), pk=pk)
    name = str(endpoint)
    organisation = endpoint.organization.cvr if endpoint.organization else ""
    endpoint.delete()
    # Deleting stops the watching (and forgets its scans and problems): who did it must stay known.
    audit.record(
        AuditAction.ENDPOINT_DELETED,
        actor=request.user,
        request=request,
        endpoint=name,
        organisation=organisation,
    )
    messages.success(request, _("“%(name)s” is no longer watched.") % {"name": name})
    return redirect("endpoints:list")


@require_POST
@permission_required("endpoints.change_registrationitem", raise_exception=True)
def registration_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a place to a certificate's registration checklist."""
    certificate = get_object_or_404(Certificate.objects.for_user(request.user), pk=pk)
    form = PlaceForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Name the place where the certificate is registered."))
    else:
        try:
            services.add_place(
                certificate, form.cleaned_data["place"], done=form.cleaned_data["done"], actor=request.user
            )
        except services.ChecklistError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Added to the registration checklist."))
    return redirect(certificate)


@require_POST
@permission_required("endpoints.change_registrationitem", raise_exception=True)
def registration_tick(request: HttpRequest, pk: int) -> HttpResponse:
    """Tick a checklist item off: the certificate is registered there now."""
    item = get_object_or_404(
        RegistrationItem.objects.filter(
            certificate__in=Certificate.objects.for_user(request.user)
        ).select_related("certificate"),
        pk=pk,
    )
    if services.tick(item, request.user):
        messages.success(request, _("Ticked off: registered at %(place)s.") % {"place": item.place})
    return redirect(item.certificate)
