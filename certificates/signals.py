"""Signals other apps listen to, so `certificates` need not know them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that stores a renewal: kwargs old, new (Certificate).
certificate_renewed = Signal()

# Sent when an administrator adds or removes a trusted CA: kwargs trusted_ca (TrustedCA), actor (User or
# None), change ("added" or "removed"). The audit log listens; certificates does not know it.
trust_store_changed = Signal()
