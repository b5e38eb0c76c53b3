"""The audit log's ears: logins (Django's signals), lockouts (django-axes), key downloads and blocks
(a certificate's history, certificates.Event) and trust-store changes (certificates.signals). The
certificates app does not know accounts exists; it only writes its own history and sends its signals."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_otp import user_has_device

from certificates.choices import EventKind
from certificates.models import Event
from certificates.signals import alert_channel_changed, trust_store_changed

from . import audit
from .choices import AuditAction
from .own_email import SESSION_KEY as ASK_FOR_EMAIL
from .own_email import should_ask

EVENT_ACTIONS = {
    EventKind.KEY_DOWNLOADED: AuditAction.KEY_DOWNLOADED,
    EventKind.BLOCKED: AuditAction.CERTIFICATE_BLOCKED,
}


@receiver(user_logged_in, dispatch_uid="accounts.audit.login")
def logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The password step; with a two-factor device the session counts once the code is given too.
    audit.record(AuditAction.LOGIN, actor=user, request=request, two_factor=user_has_device(user))
    if request is not None and hasattr(request, "session") and should_ask(user):
        request.session[ASK_FOR_EMAIL] = True


@receiver(user_login_failed, dispatch_uid="accounts.audit.login_failed")
def login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Only the username typed: the rest of `credentials` is the (masked) password.
    username = str(credentials.get("username", ""))
    audit.record(AuditAction.LOGIN_FAILED, label=username, request=request, step="password")


@receiver(user_logged_out, dispatch_uid="accounts.audit.logout")
def logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record(AuditAction.LOGOUT, actor=user, request=request)


@receiver(user_locked_out, dispatch_uid="accounts.audit.locked_out")
def locked_out(sender: Any, request: Any, username: str | None = None, **kwargs: Any) -> None:
    audit.record(AuditAction.LOCKED_OUT, label=str(username or ""), request=request)


@receiver(post_save, sender=Event, dispatch_uid="accounts.audit.certificate_event")
def certificate_event(sender: Any, instance: Event, created: bool, **kwargs: Any) -> None:
    action = EVENT_ACTIONS.get(EventKind(instance.kind)) if created else None
    if action is None:
        return
    certificate = instance.certificate
    audit.record(
        action,
        actor=instance.actor,
        label=instance.actor_label,
        certificate=certificate.pk,
        common_name=certificate.subject_cn,
        serial_number=certificate.serial_number,
    )


@receiver(trust_store_changed, dispatch_uid="accounts.audit.trust_store")
def trust_store(sender: Any, trusted_ca: Any, actor: Any, change: str, **kwargs: Any) -> None:
    audit.record(
        AuditAction.TRUST_STORE_CHANGED,
        actor=actor,
        change=change,
        name=trusted_ca.name,
        fingerprint=trusted_ca.fingerprint_sha256,
    )


@receiver(alert_channel_changed, dispatch_uid="accounts.audit.alert_channel")
def alert_channel(sender: Any, channel: Any, actor: Any, change: str, **kwargs: Any) -> None:
    # Never the address or the secret: the name, the kind and the organisation tell which channel.
    audit.record(
        AuditAction.ALERT_CHANNEL_CHANGED,
        actor=actor,
        change=change,
        name=channel.name,
        kind=channel.kind,
        organisation=channel.organization.cvr if channel.organization else "",
    )
