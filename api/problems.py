"""Errors as problem+json (RFC 9457): type, title, status, detail, plus a stable `code` and, for invalid
input, `errors` by field. The detail is the sentence the pages show for the same refusal."""

from __future__ import annotations

import http
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """A refusal with its HTTP status, a stable code and a sentence a person can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors, self.headers = errors, headers or {}


def problem_body(status: int, code: str, detail: str, errors: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:trustview:problem:{code}",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(problem: Problem) -> Response:
    return Response(
        problem_body(problem.status, problem.code, problem.detail, problem.errors),
        status=problem.status,
        headers=problem.headers,
        content_type=CONTENT_TYPE,
    )


def form_problem(form: Any, status: int = 400) -> Problem:
    """A form's errors (the pages' sentences) as one problem, with `errors` by field."""
    errors = {name: [str(e) for e in field_errors] for name, field_errors in form.errors.items()}
    return Problem(status, "invalid", _describe(errors), errors=errors)


def _describe(errors: Any) -> str:
    if isinstance(errors, dict):
        return " ".join(
            f"{name}: {_describe(value)}" if name not in ("non_field_errors", "__all__") else _describe(value)
            for name, value in errors.items()
        )
    if isinstance(errors, list):
        return " ".join(_describe(e) for e in errors)
    return str(errors)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exceptions and ours, as problem+json. Anything else is a bug: DRF re-raises it, Django
    logs it and answers a plain 500 without a stack trace (DEBUG is off)."""
    if isinstance(exc, Problem):
        return problem_response(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found, or not one you may see."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        code, errors = "invalid", response.data
        detail = _describe(errors)
    else:
        code = exc.default_code if isinstance(exc.default_code, str) else "error"
        errors, detail = None, str(response.data.get("detail", "")) if isinstance(response.data, dict) else ""
    response.data = problem_body(response.status_code, code, detail, errors)
    response.content_type = CONTENT_TYPE
    return response
