"""What the API stores: the answers to requests sent with an Idempotency-Key, for 24 hours."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """The answer the API gave to one user's request with one Idempotency-Key, replayed when the same
    request comes again (a retry after a lost answer) instead of doing the work twice. `fingerprint` is
    an HMAC of the method, path and body, so a body with a PIN is never stored or guessable from it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_answer_per_user_and_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"
