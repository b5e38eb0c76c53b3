"""The REST API's door onto the endpoints app: list, add (one, or a list), read and scan TLS endpoints,
with the pages' permissions, organisation limits, forms, services and sentences."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoints import services
from endpoints.forms import BulkForm, EndpointForm
from endpoints.models import Endpoint
from endpoints.tasks import tell_on_commit

from . import serializers as s
from .permissions import needs
from .problems import Problem, form_problem
from .views import PROBLEM, ApiMixin


def _endpoints(request: Request) -> QuerySet[Endpoint]:
    return Endpoint.objects.for_user(request.user).select_related("last_scan", "organization")


def _data(request: Request) -> dict[str, Any]:
    return dict(request.data.items()) if hasattr(request.data, "items") else {}


class EndpointList(ApiMixin, generics.ListAPIView):
    """The endpoints you may see (GET); add one, scanned at once (POST)."""

    serializer_class = s.EndpointSerializer

    def get_permissions(self) -> list[Any]:
        permission = "endpoints.add_endpoint" if self.request.method == "POST" else "endpoints.view_endpoint"
        return [needs(permission)()]

    def get_queryset(self) -> QuerySet[Endpoint]:
        return _endpoints(self.request)

    @extend_schema(
        request=s.EndpointRequestSerializer,
        responses={201: s.EndpointSerializer, 200: s.EndpointSerializer, 400: PROBLEM},
        description="Add an endpoint and scan it at once (200 when it is watched already).",
    )
    def post(self, request: Request) -> Response:
        form = EndpointForm(_data(request), user=request.user)
        if not form.is_valid():
            raise form_problem(form)
        data = form.cleaned_data
        try:
            spec = services.clean_spec(data["host"], data["port"], data["protocol"], data["sni"])
            endpoint, created = services.add_and_scan(
                spec, organization=data["organization"], actor=request.user
            )
        except services.EndpointInputError as error:
            raise Problem(400, "invalid_endpoint", str(error)) from None
        if created:
            tell_on_commit()
        endpoint = _endpoints(request).get(pk=endpoint.pk)
        body = s.EndpointSerializer(endpoint, context={"request": request}).data
        return Response(body, status=201 if created else 200)


class EndpointBulk(ApiMixin, APIView):
    permission_classes = [needs("endpoints.add_endpoint")]

    @extend_schema(
        request=s.EndpointBulkRequestSerializer,
        responses={201: s.EndpointBulkAnswerSerializer, 400: PROBLEM},
        description="Add a list of endpoints, all or none: a list with a bad line adds nothing, and the "
        "problem's errors.text names each bad line. First scans are spread over a few minutes.",
    )
    def post(self, request: Request) -> Response:
        form = BulkForm(_data(request), user=request.user)
        if not form.is_valid():
            raise form_problem(form)
        try:
            outcome = services.add_bulk(
                form.cleaned_data["text"], organization=form.cleaned_data["organization"], actor=request.user
            )
        except services.BulkInputError as error:
            raise Problem(
                400, "invalid_lines", " ".join(error.errors), errors={"text": error.errors}
            ) from None
        except services.EndpointInputError as error:
            raise Problem(400, "invalid_endpoint", str(error)) from None
        context = {"request": request}
        body = {
            "added": s.EndpointSerializer(outcome.added, many=True, context=context).data,
            "present": s.EndpointSerializer(outcome.present, many=True, context=context).data,
        }
        return Response(body, status=201)


class EndpointDetail(ApiMixin, generics.RetrieveAPIView):
    """One endpoint: where, how, its last scan and open problems (404 for another organisation's)."""

    permission_classes = [needs("endpoints.view_endpoint")]
    serializer_class = s.EndpointSerializer

    def get_queryset(self) -> QuerySet[Endpoint]:
        return _endpoints(self.request)


class EndpointScan(ApiMixin, APIView):
    permission_classes = [needs("endpoints.change_endpoint")]

    @extend_schema(
        request=None,
        responses={200: s.ScanSerializer, 404: PROBLEM, 429: PROBLEM},
        description="Scan now: what the endpoint serves, or why it answered nothing (error_code, error). "
        "At most once per endpoint every 30 seconds (429 before that).",
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(_endpoints(request), pk=pk)
        try:
            scan = services.scan_now(endpoint)
        except services.ScanTooSoon as error:
            seconds = str(int(services.MANUAL_SCAN_GAP.total_seconds()))
            raise Problem(429, "scanned_recently", str(error), headers={"Retry-After": seconds}) from None
        tell_on_commit()
        return Response(s.ScanSerializer(scan, context={"request": request}).data)
