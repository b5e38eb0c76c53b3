from __future__ import annotations

from django.urls import path

from . import views

app_name = "mitid"
urlpatterns = [
    path("issue/", views.issue, name="issue"),
]
