"""Signals other apps listen to, so `certificates` need not know them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that stores a renewal: kwargs old, new (Certificate).
certificate_renewed = Signal()
