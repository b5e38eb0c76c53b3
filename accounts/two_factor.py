"""Two-factor login with TOTP (django-otp): setting a device up, checking a code, and who must have one.

A user has at most one confirmed TOTPDevice. While they set one up it is unconfirmed, and its secret is
shown to them; once a code from their app confirms it, the secret is never shown again. Wrong codes are
throttled by django-otp (each wrong code doubles the wait before the next is checked), so guessing the
six digits is not practical; the audit log records each wrong code at a login.
"""

from __future__ import annotations

import base64

import segno
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "trustview"
# The permission of the roles that must use two-factor login when TRUSTVIEW_REQUIRE_2FA is on.
REQUIRED_FOR_PERMISSION = "certificates.download_private_key"


class CodeRefused(ValueError):
    """A code that did not verify; the message is a sentence for the user."""


def confirmed_device(user: User | AnonymousUser) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they have set one up."""
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def must_set_up(user: User | AnonymousUser) -> bool:
    """Whether the user may use no page until they set up two-factor login: TRUSTVIEW_REQUIRE_2FA is on
    and their role can download private keys (administrators, superusers)."""
    return bool(settings.TRUSTVIEW_REQUIRE_2FA) and user.has_perm(REQUIRED_FOR_PERMISSION)


def pending_device(user: User) -> TOTPDevice:
    """The unconfirmed device whose secret the set-up page shows (made on first use)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def secret_text(device: TOTPDevice) -> str:
    """The secret as an authenticator app takes it typed in: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// address as a QR code, inline SVG made here (no script, no outside service)."""
    return str(
        segno.make(device.config_url, error="m").svg_inline(
            scale=4, light="#fff", title=_("QR code for your authenticator app"), svgclass="qr"
        )
    )


def verify(device: TOTPDevice, code: str) -> TOTPDevice:
    """Check a code against the device, under django-otp's throttling. Returns the device as stored
    after the check; raises CodeRefused with a sentence when the code is wrong or comes too soon."""
    code = "".join(code.split())
    with transaction.atomic():
        # Locked, so two requests cannot both use one code or both slip past the throttle. Nothing is
        # raised inside the block: the count of wrong codes must be committed.
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, info = device.verify_is_allowed()
        # verify_token counts a wrong code (throttle_increment) and refuses a code already used.
        verified = allowed and device.verify_token(code)
    if not allowed:
        until = (info or {}).get("locked_until") or timezone.now()
        raise CodeRefused(
            _("Too many wrong codes. Wait until %(time)s, then try again with a new code.")
            % {"time": time_format(timezone.localtime(until), "H:i:s")}
        )
    if not verified:
        raise CodeRefused(_("That code is not right. Enter the code your app shows now."))
    return device


def confirm(device: TOTPDevice, code: str) -> TOTPDevice:
    """Finish setting up: the code proves the user's app holds the secret. Other devices are removed."""
    device = verify(device, code)
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    return device


def remove(device: TOTPDevice, code: str) -> None:
    """Turn two-factor login off; a current code proves it is the user and not a stolen session."""
    device = verify(device, code)
    device.delete()
