"""Status values of the endpoints app."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Protocol(models.TextChoices):
    """How TLS starts: at once, or after the protocol's STARTTLS command."""

    TLS = "tls", _("TLS")
    SMTP = "smtp", _("SMTP with STARTTLS")
    IMAP = "imap", _("IMAP with STARTTLS")
    LDAP = "ldap", _("LDAP with StartTLS")


DEFAULT_PORTS = {Protocol.TLS: 443, Protocol.SMTP: 25, Protocol.IMAP: 143, Protocol.LDAP: 389}


class ErrorCode(models.TextChoices):
    """Why a scan saw no certificate (each has a sentence in endpoints.scanner.ERROR_SENTENCES)."""

    UNRESOLVED = "unresolved", _("Name not resolved")
    BLOCKED = "blocked", _("Address not allowed")
    REFUSED = "refused", _("Connection refused")
    TIMEOUT = "timeout", _("Timed out")
    UNREACHABLE = "unreachable", _("Unreachable")
    STARTTLS = "starttls", _("STARTTLS refused")
    HANDSHAKE = "handshake", _("Handshake failed")


class ProblemKind(models.TextChoices):
    """What is wrong with what an endpoint serves; each is alerted once and cleared once."""

    SUPERSEDED = "superseded", _("Still serves the old certificate")
    EXPIRING = "expiring", _("Serves a certificate that expires soon")
    NAME_MISMATCH = "name_mismatch", _("Name does not match")
    CHAIN_INCOMPLETE = "chain_incomplete", _("Chain incomplete")
    UNREACHABLE = "unreachable", _("Stopped answering")
