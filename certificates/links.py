"""The addresses of the portal's pages for a certificate, reversed once per URL name and filled in with
the certificate's id: Django's `reverse` walks the URL patterns on every call (about 75 µs), and the
dashboard asks for some forty addresses (each row's page and actions, each event's certificate), the
list fifty. The patterns stay the only definition: the first call reverses the name with a placeholder
id and keeps the text around it, for the script prefix and URLconf in force; a setting change (tests
override ROOT_URLCONF) forgets them."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse

# An id no certificate has, reversed in its place and then replaced: no URL has these digits otherwise.
_PLACEHOLDER = 7_340_271_953
_parts: dict[tuple[str, str, Any, Any], tuple[str, str]] = {}
_lock = threading.Lock()


@receiver(setting_changed)
def _forget(**kwargs: Any) -> None:
    with _lock:
        _parts.clear()


def object_url(name: str, pk: int) -> str:
    """`reverse(name, args=[pk])` for a URL whose one argument is an integer id."""
    key = (name, get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    parts = _parts.get(key)
    if parts is None:
        before, placeholder, after = reverse(name, args=[_PLACEHOLDER]).partition(str(_PLACEHOLDER))
        if not placeholder or str(_PLACEHOLDER) in after:
            return reverse(name, args=[pk])
        parts = (before, after)
        with _lock:
            _parts[key] = parts
    return f"{parts[0]}{int(pk)}{parts[1]}"
