from __future__ import annotations

from django.apps import AppConfig


class MitidConfig(AppConfig):
    name = "mitid"
    verbose_name = "MitID Erhverv"
