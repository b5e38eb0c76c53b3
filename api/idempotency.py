"""Idempotency-Key on the API's creating requests (renew, issue): the same key from the same user with
the same request within IDEMPOTENCY_WINDOW gets the same answer and does no work twice; the same key
with another request is refused (422)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from .models import IdempotentRequest
from .problems import Problem

HEADER = "Idempotency-Key"
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
# The most answers kept for one user: a script sending a new key with every request (or someone who
# means harm) makes the table no larger than this per user. Dropping the oldest does no harm beyond
# the guarantee: renew and issue are idempotent in their services too (one open order per certificate,
# MitID Erhverv's key per reference number and PIN).
MAX_KEPT_PER_USER = 1000


def _fingerprint(request: Request) -> str:
    """An HMAC (keyed with SECRET_KEY) of what the request asks: a body with a PIN leaves no trace."""
    body = json.dumps(request.data, sort_keys=True, default=str)
    message = "\0".join([request.method or "", request.path, body]).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def once(request: Request, run: Callable[[], Response]) -> Response:
    """Answer `request` with `run()`, or, for a repeated Idempotency-Key, with the answer given before.
    Answers of 5xx are not kept (a retry should try again)."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            400, "invalid_idempotency_key", _("The Idempotency-Key header must have 1 to 255 characters.")
        )
    fingerprint = _fingerprint(request)
    user = request.user
    earlier = IdempotentRequest.objects.filter(user=user.pk, key=key).first()
    if earlier is not None and earlier.created_at > timezone.now() - IDEMPOTENCY_WINDOW:
        return _replay(earlier, fingerprint)
    response = run()
    if response.status_code < 500:
        try:
            with transaction.atomic():
                # Answers older than the window are of no more use (this key's too, if it had one).
                IdempotentRequest.objects.filter(created_at__lte=timezone.now() - IDEMPOTENCY_WINDOW).delete()
                IdempotentRequest.objects.filter(user=user.pk, key=key).delete()
                IdempotentRequest.objects.create(
                    user_id=user.pk,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    response=response.data,
                )
                kept = IdempotentRequest.objects.filter(user=user.pk).order_by("-created_at", "-id")
                oldest = kept.values_list("pk", flat=True)[MAX_KEPT_PER_USER:]
                IdempotentRequest.objects.filter(pk__in=list(oldest)).delete()
        except IntegrityError:
            # The same key at the same moment: the services made it one renewal or one certificate;
            # the answer kept is the other request's.
            earlier = IdempotentRequest.objects.filter(user=user.pk, key=key).first()
            if earlier is not None:
                return _replay(earlier, fingerprint)
    return response


def _replay(earlier: IdempotentRequest, fingerprint: str) -> Response:
    if not hmac.compare_digest(earlier.fingerprint, fingerprint):
        raise Problem(
            422,
            "idempotency_key_reused",
            _(
                "This Idempotency-Key was used for another request in the last 24 hours. Use a new key "
                "for a new request."
            ),
        )
    content_type = "application/problem+json" if earlier.status_code >= 400 else None
    response = Response(earlier.response, status=earlier.status_code, content_type=content_type)
    response["Idempotent-Replayed"] = "true"
    return response
