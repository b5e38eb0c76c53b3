"""Signals other apps listen to, so `certificates` need not know them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that stores a renewal: kwargs old, new (Certificate).
certificate_renewed = Signal()

# Sent when an administrator adds or removes a trusted CA: kwargs trusted_ca (TrustedCA), actor (User or
# None), change ("added" or "removed"). The audit log listens; certificates does not know it.
trust_store_changed = Signal()

# Sent inside the transaction in which a certificate becomes superseded by its renewal, whether renewed in
# the portal or linked by an import: kwargs old, new (Certificate). Apps that track where a certificate is
# in use (endpoints) listen, so certificates need not know them.
certificate_superseded = Signal()
