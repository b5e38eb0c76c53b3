"""The audit log page (/audit/): administrators read and filter who logged in and who changed what."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import AuditEntry
from .security_forms import AuditFilterForm


@permission_required("accounts.view_auditentry", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered by action, user and days; paged."""
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.all()
    if form.is_valid():
        entries = entries.matching(**form.cleaned_data)
    page = Paginator(entries.order_by("-created_at", "-id"), settings.TRUSTVIEW_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "accounts/audit_log.html", context, status=400 if form.errors else 200)
