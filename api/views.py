"""The REST API: each view authorises (the pages' permissions, organisation limits through for_user),
validates with the pages' forms, calls the service the page calls, and answers JSON or problem+json."""

from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from certificates import export
from certificates.choices import OrderState, Status
from certificates.forms import CertificateFilterForm, ImportForm, RenewalSettingsForm
from certificates.models import (
    Certificate,
    CertificateQuerySet,
    Event,
    Order,
    Organization,
    organisation_limit,
)
from certificates.renewal import BlockNotPossible, RenewalNotPossible, block_certificate, request_renewal
from certificates.services import (
    change_renewal_settings,
    export_pkcs12,
    import_certificate_file,
    issuer_chain,
)
from certificates.tasks import queue_order_on_commit
from certificates.x509 import CertificateFileError
from mitid.errors import MitIDError
from mitid.forms import IssueForm
from mitid.models import CertificateProfile
from mitid.services import issue_certificate

from . import idempotency
from . import serializers as s
from .parsers import JSONParser
from .permissions import needs
from .problems import Problem, form_problem

PROBLEM = OpenApiResponse(s.ProblemSerializer, description="An error, as application/problem+json.")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The same key, user and body within 24 hours gives the same answer and does the work once.",
)
MAX_RENEWAL_CHAIN = 50


class JsonOnly(BaseContentNegotiation):
    """The API speaks JSON (and CSV where it says so): answer with the view's first renderer whatever
    the Accept header asks, rather than refusing with 406."""

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return next((p for p in parsers if p.media_type == request.content_type.split(";")[0]), None)

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> Any:
        return renderers[0], renderers[0].media_type


class Pages(PageNumberPagination):
    page_size = settings.TRUSTVIEW_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = 500


class ApiMixin:
    content_negotiation_class = JsonOnly
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    pagination_class = Pages


def _certificate(request: Request, pk: int) -> Certificate:
    """One certificate the user may see (404 for another organisation's: it does not exist for them)."""
    return get_object_or_404(Certificate.objects.for_user(request.user).select_related("organization"), pk=pk)


# --- certificates --------------------------------------------------------------------------------------

FILTERS = [
    OpenApiParameter("q", str, description="Common name (part), CVR, or start of serial or fingerprint."),
    OpenApiParameter("status", str, enum=Status.values),
    OpenApiParameter("environment", str, enum=["test", "production"]),
    OpenApiParameter("expires_within", int, description="Unexpired and expiring within this many days."),
    OpenApiParameter("renewal", str, enum=["in_progress", "failing"]),
    OpenApiParameter("situation", str, enum=["attention", "lapsed"]),
    OpenApiParameter("sort", str, enum=["expiry", "-expiry", "name"]),
]


def _object_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (a list or a bare value is refused with a sentence, not a blank one)."""
    if not isinstance(request.data, dict):
        raise Problem(400, "invalid", _("The request body must be a JSON object."))
    return request.data


def _filtered(request: Request) -> CertificateQuerySet:
    """The certificates the list page would show for these query parameters (400 for invalid ones)."""
    form = CertificateFilterForm(request.query_params or None)
    if form.is_bound and not form.is_valid():
        raise form_problem(form)
    return form.filter(Certificate.objects.for_user(request.user))


class CertificateList(ApiMixin, generics.ListAPIView):
    """The certificates you may see, with the list page's search, filters and sort, paged.
    `?format=csv` gives the whole filtered list as CSV (as export.csv does)."""

    permission_classes = [needs("certificates.view_certificate")]
    serializer_class = s.CertificateSerializer

    def get_queryset(self) -> QuerySet[Certificate]:
        return _filtered(self.request).with_status().with_situation().for_listing()

    @extend_schema(
        parameters=[*FILTERS, OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={200: s.CertificateSerializer(many=True), 400: PROBLEM},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.query_params.get("format") == "csv":
            return export.csv_response(_filtered(request))
        return super().get(request, *args, **kwargs)


class CertificateExport(ApiMixin, APIView):
    permission_classes = [needs("certificates.view_certificate")]

    @extend_schema(
        parameters=FILTERS,
        responses={(200, "text/csv"): OpenApiTypes.STR, 400: PROBLEM},
        description="The filtered list as CSV (streamed): " + ", ".join(export.HEADER) + ".",
    )
    def get(self, request: Request) -> HttpResponseBase:
        return export.csv_response(_filtered(request))


class CertificateDetail(ApiMixin, generics.RetrieveAPIView):
    """One certificate: parsed fields, state, days left, renewal, renewal chain, issuers and history."""

    permission_classes = [needs("certificates.view_certificate")]
    serializer_class = s.CertificateDetailSerializer

    def get_queryset(self) -> QuerySet[Certificate]:
        return Certificate.objects.for_user(self.request.user).with_status().with_situation()

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        certificate = self.get_object()
        context = {
            **self.get_serializer_context(),
            "open_renewal": certificate.open_renewal(),
            "renewal_chain": _renewal_chain(request, certificate),
            "issuer_chain": issuer_chain(certificate),
        }
        return Response(self.get_serializer(certificate, context=context).data)


def _renewal_chain(request: Request, certificate: Certificate) -> list[Certificate]:
    """The certificate's renewal chain that the user may see, oldest first."""
    visible = Certificate.objects.for_user(request.user).only(
        "pk", "serial_number", "not_before", "not_after", "state", "renewed_from_id"
    )
    chain = [certificate]
    while chain[0].renewed_from_id and len(chain) < MAX_RENEWAL_CHAIN:
        earlier = visible.filter(pk=chain[0].renewed_from_id).first()
        if earlier is None:
            break
        chain.insert(0, earlier)
    while len(chain) < MAX_RENEWAL_CHAIN:
        later = visible.filter(renewed_from=chain[-1].pk).first()
        if later is None:
            break
        chain.append(later)
    return chain


class CertificateImport(ApiMixin, APIView):
    permission_classes = [needs("certificates.add_certificate")]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": s.ImportRequestSerializer},
        responses={201: s.ImportAnswerSerializer, 200: s.ImportAnswerSerializer, 400: PROBLEM},
        description="Import a PEM, DER or PKCS#12 file, as the Import page does. All or nothing.",
    )
    def post(self, request: Request) -> Response:
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            raise form_problem(form)
        upload = form.cleaned_data["file"]
        try:
            outcomes = import_certificate_file(
                upload.read(),
                password=form.cleaned_data["password"] or None,
                actor=request.user,
                filename=upload.name,
            )
        except CertificateFileError as error:
            raise Problem(400, "invalid_file", str(error), errors={error.field: [str(error)]}) from None
        body = {
            "certificates": [
                {"id": o.certificate.pk, "created": o.created, "message": o.message, "warning": o.warning}
                for o in outcomes
            ]
        }
        return Response(body, status=201 if any(o.created for o in outcomes) else 200)


class CertificateIssue(ApiMixin, APIView):
    permission_classes = [needs("mitid.issue_certificate")]

    @extend_schema(
        request=s.IssueRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: s.IssueAnswerSerializer, 200: s.IssueAnswerSerializer, 400: PROBLEM, 503: PROBLEM},
        description="Issue an OCES certificate from MitID Erhverv with a profile's PIN and reference number.",
    )
    def post(self, request: Request) -> Response:
        return idempotency.once(request, lambda: self._issue(request))

    def _issue(self, request: Request) -> Response:
        form = IssueForm(_object_body(request))
        if not form.is_valid():
            raise form_problem(form)
        try:
            outcome = issue_certificate(
                environment=form.cleaned_data["environment"],
                reference_number=form.cleaned_data["reference_number"],
                pin=form.cleaned_data["pin"],
                actor=request.user,
            )
        except MitIDError as error:
            raise _mitid_problem(error) from None
        certificate = (
            Certificate.objects.with_status().select_related("organization").get(pk=outcome.certificate.pk)
        )
        body = {
            "created": outcome.created,
            "certificate": s.CertificateSerializer(certificate, context={"request": request}).data,
        }
        return Response(body, status=201 if outcome.created else 200)


def _mitid_problem(error: MitIDError) -> Problem:
    """MitID Erhverv's refusal with the Issue page's sentence: 503 when it may pass, 422 otherwise."""
    if error.transient:
        headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else {}
        return Problem(503, error.code, error.sentence, headers=headers)
    return Problem(422, error.code, error.sentence)


class CertificateRenew(ApiMixin, APIView):
    permission_classes = [needs("certificates.renew_certificate")]

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={202: s.RenewAnswerSerializer, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM},
        description="Renew now: open a renewal order (or answer the one in progress); poll the order.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return idempotency.once(request, lambda: self._renew(request, pk))

    def _renew(self, request: Request, pk: int) -> Response:
        certificate = _certificate(request, pk)
        try:
            order, created = request_renewal(certificate, request.user)
        except RenewalNotPossible as refusal:
            raise Problem(409, "renewal_not_possible", str(refusal)) from None
        if created:
            queue_order_on_commit(order.pk)
        detail = (
            _("Renewal requested.") if created else _("A renewal of this certificate is already in progress.")
        )
        body = {
            "created": created,
            "detail": detail,
            "order": s.OrderSerializer(order, context={"request": request}).data,
        }
        return Response(body, status=202, headers={"Location": reverse("api:order-detail", args=[order.pk])})


class CertificateRenewalSettings(ApiMixin, APIView):
    permission_classes = [needs("certificates.renew_certificate")]

    @extend_schema(
        request=s.RenewalSettingsSerializer,
        responses={200: s.RenewalSettingsAnswerSerializer, 400: PROBLEM, 404: PROBLEM},
        description="Automatic renewal on or off, and how many days before expiry.",
    )
    def put(self, request: Request, pk: int) -> Response:
        certificate = _certificate(request, pk)
        form = RenewalSettingsForm(_object_body(request))
        if not form.is_valid():
            raise form_problem(form)
        changed = change_renewal_settings(
            certificate,
            auto_renew=form.cleaned_data["auto_renew"],
            renew_before_days=form.cleaned_data["renew_before_days"],
            actor=request.user,
        )
        return Response(
            {
                "auto_renew": certificate.auto_renew,
                "renew_before_days": certificate.renew_before.days,
                "renew_at": certificate.renew_at,
                "changed": changed,
            }
        )


class CertificateBlock(ApiMixin, APIView):
    permission_classes = [needs("certificates.block_certificate")]

    @extend_schema(
        request=None,
        responses={200: s.BlockAnswerSerializer, 404: PROBLEM, 409: PROBLEM},
        description="Block (revoke) the certificate at its CA. Irreversible.",
    )
    def post(self, request: Request, pk: int) -> Response:
        certificate = _certificate(request, pk)
        try:
            block_certificate(certificate, request.user)
        except BlockNotPossible as refusal:
            raise Problem(409, "block_not_possible", str(refusal)) from None
        certificate = Certificate.objects.with_status().select_related("organization").get(pk=pk)
        return Response(
            {
                "detail": _("“%(name)s” is blocked.") % {"name": certificate.subject_cn},
                "certificate": s.CertificateSerializer(certificate, context={"request": request}).data,
            }
        )


class CertificatePkcs12(ApiMixin, APIView):
    permission_classes = [needs("certificates.download_private_key")]

    @extend_schema(
        request=None,
        responses={200: s.Pkcs12AnswerSerializer, 404: PROBLEM, 409: PROBLEM},
        description="The certificate, chain and private key as PKCS#12 under a fresh password (shown "
        "this once; written to the history and the audit log).",
    )
    def post(self, request: Request, pk: int) -> Response:
        certificate = _certificate(request, pk)
        if not certificate.has_private_key:
            raise Problem(
                409,
                "no_private_key",
                _("The portal holds no private key for this certificate (monitor only)."),
            )
        made = export_pkcs12(certificate, request.user)
        body = {
            "filename": made.filename,
            "password": made.password,
            "pkcs12": base64.b64encode(made.data).decode(),
        }
        return Response(body, headers={"Cache-Control": "no-store"})


# --- orders, events, profiles, organisations -----------------------------------------------------------


class ListFilterForm(forms.Form):
    """The query parameters of the order and event lists (each optional)."""

    certificate = forms.IntegerField(required=False, min_value=1)
    state = forms.ChoiceField(required=False, choices=OrderState.choices)


def _list_filter(request: Request) -> dict[str, Any]:
    """The lists' query parameters, validated (400 with a sentence for invalid ones)."""
    form = ListFilterForm(request.query_params)
    if not form.is_valid():
        raise form_problem(form)
    return form.cleaned_data


class OrderList(ApiMixin, generics.ListAPIView):
    """Orders (renewals, issues) of the certificates you may see, newest first."""

    permission_classes = [needs("certificates.view_certificate")]
    serializer_class = s.OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        orders = Order.objects.filter(certificate__in=Certificate.objects.for_user(self.request.user))
        wanted = _list_filter(self.request)
        if wanted["certificate"] is not None:
            orders = orders.filter(certificate=wanted["certificate"])
        if wanted["state"]:
            orders = orders.filter(state=wanted["state"])
        return orders.order_by("-created_at", "-id")

    @extend_schema(
        parameters=[
            OpenApiParameter("certificate", int),
            OpenApiParameter("state", str, enum=OrderState.values),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OrderDetail(ApiMixin, generics.RetrieveAPIView):
    """One order: its state, attempts and last error. Poll it after Renew now."""

    permission_classes = [needs("certificates.view_certificate")]
    serializer_class = s.OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.filter(certificate__in=Certificate.objects.for_user(self.request.user))


class EventList(ApiMixin, generics.ListAPIView):
    """The history of the certificates you may see, newest first."""

    permission_classes = [needs("certificates.view_certificate")]
    serializer_class = s.EventSerializer

    def get_queryset(self) -> QuerySet[Event]:
        events = Event.objects.filter(certificate__in=Certificate.objects.for_user(self.request.user))
        certificate = _list_filter(self.request)["certificate"]
        if certificate is not None:
            events = events.filter(certificate=certificate)
        return events.order_by("-created_at", "-id")

    @extend_schema(parameters=[OpenApiParameter("certificate", int)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ProfileList(ApiMixin, generics.ListAPIView):
    """MitID Erhverv certificate profiles (of your organisations)."""

    permission_classes = [needs("mitid.view_certificateprofile")]
    serializer_class = s.ProfileSerializer

    def get_queryset(self) -> QuerySet[CertificateProfile]:
        return (
            CertificateProfile.objects.for_user(self.request.user)
            .select_related("organization")
            .prefetch_related("certificates")
            .order_by("name", "id")
        )


class ProfileDetail(ApiMixin, generics.RetrieveAPIView):
    permission_classes = [needs("mitid.view_certificateprofile")]
    serializer_class = s.ProfileSerializer

    def get_queryset(self) -> QuerySet[CertificateProfile]:
        return CertificateProfile.objects.for_user(self.request.user).select_related("organization")


class OrganisationList(ApiMixin, generics.ListAPIView):
    """Organisations (CVR) and whether Digst has enabled MitID renewal for them."""

    permission_classes = [needs("certificates.view_organization")]
    serializer_class = s.OrganisationSerializer

    def get_queryset(self) -> QuerySet[Organization]:
        limit = organisation_limit(self.request.user)
        organisations = Organization.objects.order_by("name", "cvr", "id")
        return organisations if limit is None else organisations.filter(pk__in=limit.values("pk"))
