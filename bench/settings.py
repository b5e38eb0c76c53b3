"""The portal's settings, with the benchmark's URLconf (one extra, empty page as the baseline)."""

from __future__ import annotations

from trustview.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The import figure is one bundle of 1,000 certificates; the portal's default refuses more than 200.
TRUSTVIEW_IMPORT_MAX_CERTIFICATES = 1001
