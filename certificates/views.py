"""Certificate pages: list, detail and import. Views validate, call one service, and render or redirect."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import alerts, channels, export
from . import dashboard as dashboard_data
from .choices import STATUS_COLOURS, OrderKind
from .forms import (
    AlertChannelForm,
    CertificateFilterForm,
    ContactsForm,
    ImportForm,
    NotificationSettingsForm,
    RenewalSettingsForm,
)
from .models import AlertChannel, Certificate, NotificationSettings, Order, organisation_limit
from .paging import list_page
from .renewal import (
    BlockNotPossible,
    RenewalNotPossible,
    block_certificate,
    request_renewal,
    retry_after_renewal_enabled,
)
from .services import (
    change_renewal_settings,
    download_name,
    export_pkcs12,
    import_certificate_file,
    issuer_chain,
    set_contacts,
)
from .tasks import queue_order_on_commit
from .x509 import CertificateFileError


def _live(request: HttpRequest, template: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """A page whose live part htmx fetches again while a renewal runs: the whole page, or only the
    partial when htmx asks (its HX-Request header; the answer varies on it so no cache mixes them)."""
    response = render(request, partial if request.headers.get("HX-Request") else template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@permission_required("certificates.view_certificate", raise_exception=True)
def certificate_list(request: HttpRequest) -> HttpResponse:
    form = CertificateFilterForm(request.GET or None)
    page = list_page(
        form.filter(Certificate.objects.for_user(request.user)),
        request.GET,
        settings.TRUSTVIEW_PAGE_SIZE,
        whole_inventory=not form.narrows() and organisation_limit(request.user) is None,
        searched=form.searches(),
    )
    query = request.GET.copy()
    for name in ("page", "after", "before"):
        query.pop(name, None)
    return _live(
        request,
        "certificates/list.html",
        "certificates/partials/list_results.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "any_renewing": any(getattr(c, "renewing", False) for c in page.object_list),
        },
    )


@permission_required("certificates.view_certificate", raise_exception=True)
def certificate_export(request: HttpRequest) -> StreamingHttpResponse:
    """The list as filtered, as CSV (streamed; only the columns it writes are read)."""
    form = CertificateFilterForm(request.GET or None)
    return export.csv_response(form.filter(Certificate.objects.for_user(request.user)))


@permission_required("certificates.view_certificate", raise_exception=True)
def certificate_detail(request: HttpRequest, pk: int) -> HttpResponse:
    now = timezone.now()
    certificate = Certificate.objects.for_user(request.user).for_page(pk, now)
    if certificate is None:
        raise Http404
    situation = certificate.situation(now)
    # Its renewal, when it has one (with_situation read whether) and the viewer may see it.
    replaced_by = (
        Certificate.objects.for_user(request.user).filter(renewed_from=certificate).first()
        if situation.replaced
        else None
    )
    return render(
        request,
        "certificates/detail.html",
        {
            "certificate": certificate,
            "situation": situation,
            "replaced_by": replaced_by,
            "open_renewal": situation.open_renewal,
            "renewal_blocker": situation.renewal_blocker,
            "settings_form": RenewalSettingsForm(
                initial={
                    "auto_renew": certificate.auto_renew,
                    "renew_before_days": certificate.renew_before.days,
                }
            ),
            "chain": issuer_chain(certificate),
            "contacts": [c.email for c in certificate.contacts.all()],
            "events": certificate.events.all()[:200],
            "status_colours": STATUS_COLOURS,
        },
    )


@permission_required("certificates.add_certificate", raise_exception=True)
def certificate_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            outcomes = import_certificate_file(
                upload.read(),
                password=form.cleaned_data["password"] or None,
                actor=request.user,
                filename=upload.name,
            )
        except CertificateFileError as error:
            form.add_error(error.field, str(error))
        else:
            for outcome in outcomes:
                (messages.success if outcome.created else messages.info)(request, outcome.message)
                if outcome.warning:
                    messages.warning(request, outcome.warning)
            if len(outcomes) == 1:
                return redirect(outcomes[0].certificate)
            return redirect("certificates:list")
    return render(request, "certificates/import.html", {"form": form}, status=400 if form.errors else 200)


@permission_required("certificates.view_certificate", raise_exception=True)
def download_certificate(request: HttpRequest, pk: int, what: str) -> HttpResponse:
    """The certificate alone, or with its chain (issuers, nearest first), as PEM."""
    certificate = get_object_or_404(
        Certificate.objects.for_user(request.user).only(
            "pk", "subject_cn", "serial_number", "pem", "chain_pem"
        ),
        pk=pk,
    )
    body = certificate.pem + (certificate.chain_pem if what == "chain" else "")
    suffix = "-chain" if what == "chain" else ""
    response = HttpResponse(body, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="{download_name(certificate)}{suffix}.pem"'
    return response


@require_POST
@never_cache
@permission_required("certificates.download_private_key", raise_exception=True)
def download_pkcs12(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a PKCS#12 with a fresh password and show the password once, beside the file.

    The file travels inside this one answer (a data: link), so neither the file nor its password is
    kept on the server, and neither appears in a URL.
    """
    certificate = get_object_or_404(Certificate.objects.for_user(request.user), pk=pk)
    if not certificate.has_private_key:
        messages.error(request, _("The portal holds no private key for this certificate (monitor only)."))
        return redirect(certificate)
    export = export_pkcs12(certificate, request.user)
    return render(
        request,
        "certificates/pkcs12.html",
        {"certificate": certificate, "export": export, "data_b64": base64.b64encode(export.data).decode()},
    )


@require_POST
@permission_required("certificates.renew_certificate", raise_exception=True)
def renew(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Renew now": open a renewal order, or show the one already open."""
    return _start_renewal(
        request,
        pk,
        request_renewal,
        _("Renewal requested. This page shows when the new certificate is ready."),
    )


@require_POST
@permission_required("certificates.renew_certificate", raise_exception=True)
def renewal_enabled_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Digst has enabled renewal: try again" after a renewal was refused as not enabled."""
    return _start_renewal(
        request,
        pk,
        retry_after_renewal_enabled,
        _("Renewal requested again. This page shows when the new certificate is ready."),
    )


def _start_renewal(
    request: HttpRequest,
    pk: int,
    start: Callable[[Certificate, Any], tuple[Order, bool]],
    requested: str,
) -> HttpResponse:
    """Open a renewal with `start`, queue its first step, and say what happened on the certificate's page."""
    certificate = get_object_or_404(
        Certificate.objects.for_user(request.user).select_related("organization"), pk=pk
    )
    try:
        order, created = start(certificate, request.user)
    except RenewalNotPossible as refusal:
        messages.error(request, str(refusal))
    else:
        if created:
            queue_order_on_commit(order.pk)
            messages.success(request, requested)
        else:
            messages.info(request, _("A renewal of this certificate is already in progress."))
    return redirect(certificate)


@permission_required("certificates.view_certificate", raise_exception=True)
def renewal_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The renewal-progress line of a certificate's page, which htmx fetches while the renewal runs.

    While the order is open: the line, in the reader's language. Once issued: htmx is told to open the
    new certificate (HX-Redirect); once it ended otherwise: to reload the page, which says why.
    """
    certificate = get_object_or_404(Certificate.objects.for_user(request.user).only("pk"), pk=pk)
    order = (
        Order.objects.filter(certificate=certificate, kind=OrderKind.RENEW)
        .select_related("new_certificate")
        .order_by("-created_at", "-id")
        .first()
    )
    if order is not None and order.is_open:
        return render(
            request,
            "certificates/partials/renewal_progress.html",
            {"certificate": certificate, "order": order},
        )
    response = HttpResponse(status=204)
    if order is not None and order.new_certificate is not None:
        messages.success(request, _("Renewed: this is the new certificate."))
        response["HX-Redirect"] = order.new_certificate.get_absolute_url()
    else:
        response["HX-Refresh"] = "true"
    return response


@permission_required("certificates.block_certificate", raise_exception=True)
def block(request: HttpRequest, pk: int) -> HttpResponse:
    """Block a certificate, after a confirmation that names it and says it cannot be undone."""
    certificate = get_object_or_404(Certificate.objects.for_user(request.user).with_status(), pk=pk)
    if request.method == "POST":
        try:
            block_certificate(certificate, request.user)
        except BlockNotPossible as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(request, _("“%(name)s” is blocked.") % {"name": certificate.subject_cn})
        return redirect(certificate)
    cannot_block = certificate.block_blocker()
    if cannot_block:  # said before the confirmation page: nobody confirms what cannot happen
        messages.error(request, cannot_block)
        return redirect(certificate)
    return render(request, "certificates/block.html", {"certificate": certificate})


@require_POST
@permission_required("certificates.renew_certificate", raise_exception=True)
def renewal_settings(request: HttpRequest, pk: int) -> HttpResponse:
    certificate = get_object_or_404(Certificate.objects.for_user(request.user), pk=pk)
    form = RenewalSettingsForm(request.POST)
    if form.is_valid():
        if change_renewal_settings(
            certificate,
            auto_renew=form.cleaned_data["auto_renew"],
            renew_before_days=form.cleaned_data["renew_before_days"],
            actor=request.user,
        ):
            messages.success(request, _("Renewal settings saved."))
    else:
        errors = "; ".join(
            f"{form.fields[name].label}: {' '.join(str(e) for e in field_errors)}"
            for name, field_errors in form.errors.items()
        )
        messages.error(request, _("The renewal settings were not saved. %(errors)s") % {"errors": errors})
    return redirect(certificate)


@require_POST
@permission_required("certificates.renew_certificate", raise_exception=True)
def certificate_contacts(request: HttpRequest, pk: int) -> HttpResponse:
    """Set the addresses that receive this certificate's alerts besides the portal's recipients."""
    certificate = get_object_or_404(Certificate.objects.for_user(request.user), pk=pk)
    form = ContactsForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("The contacts were not saved. %(errors)s")
            % {"errors": " ".join(str(e) for e in form.errors.get("contacts", []))},
        )
    elif set_contacts(certificate, form.cleaned_data["contacts"], request.user):
        messages.success(request, _("Contacts saved."))
    return redirect(certificate)


@permission_required("certificates.view_certificate", raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    """What expires when, what is failing, and what happened lately."""
    now = timezone.now()
    certificates = Certificate.objects.for_user(request.user)
    organisations = organisation_limit(request.user)
    attention = dashboard_data.attention(now, certificates)
    counts, chart = dashboard_data.counts_and_chart(
        now, certificates, organisations, renewal_failing=attention.renewal_failing
    )
    return _live(
        request,
        "certificates/dashboard.html",
        "certificates/partials/dashboard_body.html",
        {
            "counts": {**counts, "needs_attention": attention.count},
            "chart": chart,
            "attention": attention.situations,
            "attention_more": attention.more,
            "events": dashboard_data.recent_events(request.user),
            "expiring_days": settings.TRUSTVIEW_EXPIRING_DAYS,
            "critical_days": settings.TRUSTVIEW_CRITICAL_DAYS,
        },
    )


@permission_required("certificates.change_notificationsettings", raise_exception=True)
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Who receives alerts, and at which thresholds."""
    row = NotificationSettings.load()
    initial = {
        "recipients": "\n".join(row.recipients),
        "thresholds_days": ", ".join(map(str, row.thresholds_days)),
    }
    form = NotificationSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        row.recipients = form.cleaned_data["recipients"]
        row.thresholds_days = form.cleaned_data["thresholds_days"]
        row.save()
        messages.success(request, _("Notification settings saved."))
        return redirect("certificates:notifications")
    return _notifications_page(request, form, AlertChannelForm(user=request.user))


def _notifications_page(
    request: HttpRequest, form: NotificationSettingsForm, channel_form: AlertChannelForm
) -> HttpResponse:
    return render(
        request,
        "certificates/notifications.html",
        {
            "form": form,
            "effective_recipients": alerts.recipients(),
            "effective_thresholds": alerts.thresholds(),
            "channels": channels.manageable_by(request.user),
            "channel_form": channel_form,
        },
        status=400 if form.errors or channel_form.errors else 200,
    )


def _settings_form() -> NotificationSettingsForm:
    row = NotificationSettings.objects.filter(pk=1).first() or NotificationSettings()
    return NotificationSettingsForm(
        initial={
            "recipients": "\n".join(row.recipients),
            "thresholds_days": ", ".join(map(str, row.thresholds_days)),
        }
    )


@require_POST
@permission_required("certificates.change_notificationsettings", raise_exception=True)
def channel_new(request: HttpRequest) -> HttpResponse:
    """Set up a Teams, Slack or webhook channel."""
    form = AlertChannelForm(request.POST, user=request.user)
    if not form.is_valid():
        return _notifications_page(request, _settings_form(), form)
    channel = channels.save_channel(
        form.save(commit=False),
        url=form.cleaned_data["url"],
        secret=form.cleaned_data["secret"],
        actor=request.user,  # type: ignore[arg-type]
        change="added",
    )
    messages.success(
        request, _("Channel “%(name)s” added. Send a test message to check it.") % {"name": channel.name}
    )
    return redirect("certificates:notifications")


@permission_required("certificates.change_notificationsettings", raise_exception=True)
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a channel; an empty address or secret keeps the stored one."""
    channel = get_object_or_404(channels.manageable_by(request.user), pk=pk)
    form = AlertChannelForm(request.POST or None, instance=channel, user=request.user)
    if request.method == "POST" and form.is_valid():
        channels.save_channel(
            form.save(commit=False),
            url=form.cleaned_data["url"],
            secret=form.cleaned_data["secret"],
            actor=request.user,  # type: ignore[arg-type]
            change="changed",
        )
        messages.success(request, _("Channel “%(name)s” saved.") % {"name": channel.name})
        return redirect("certificates:notifications")
    return render(
        request,
        "certificates/channel_edit.html",
        {"channel": channel, "form": form},
        status=400 if form.errors else 200,
    )


@require_POST
@permission_required("certificates.change_notificationsettings", raise_exception=True)
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(channels.manageable_by(request.user), pk=pk)
    channels.delete_channel(channel, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, _("Channel “%(name)s” removed.") % {"name": channel.name})
    return redirect("certificates:notifications")


@require_POST
@permission_required("certificates.change_notificationsettings", raise_exception=True)
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test message to one channel now and say whether it arrived."""
    channel: AlertChannel = get_object_or_404(channels.manageable_by(request.user), pk=pk)
    try:
        channels.send_test_message(channel, request.user.get_username())
    except (channels.Transient, channels.Permanent) as failure:
        messages.error(
            request,
            _("The test message to “%(name)s” was not delivered: %(reason)s")
            % {"name": channel.name, "reason": failure},
        )
    else:
        messages.success(request, _("A test message was delivered to “%(name)s”.") % {"name": channel.name})
    return redirect("certificates:notifications")


@require_POST
@permission_required("certificates.change_notificationsettings", raise_exception=True)
def send_test_email(request: HttpRequest) -> HttpResponse:
    """Send a test e-mail to the recipients in effect, and say to whom, or what the mail server said."""
    try:
        sent_to = alerts.send_test_email(request.user.get_username())
    except alerts.TestEmailFailed as failure:
        messages.error(request, _("The test e-mail was not sent: %(reason)s") % {"reason": _(str(failure))})
    else:
        messages.success(
            request, _("A test e-mail was sent to %(addresses)s.") % {"addresses": ", ".join(sent_to)}
        )
    return redirect("certificates:notifications")
