from __future__ import annotations

from django.urls import path

from . import views

app_name = "certificates"
urlpatterns = [
    path("", views.certificate_list, name="list"),
    path("import/", views.certificate_import, name="import"),
    path("<int:pk>/", views.certificate_detail, name="detail"),
]
