from __future__ import annotations

from django.urls import path

from . import views

app_name = "endpoints"
urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("add/", views.endpoint_add, name="add"),
    path("bulk/", views.endpoint_bulk, name="bulk"),
    path("not-deployed/", views.not_deployed, name="not-deployed"),
    path("<int:pk>/", views.endpoint_detail, name="detail"),
    path("<int:pk>/scan/", views.endpoint_scan, name="scan"),
    path("<int:pk>/delete/", views.endpoint_delete, name="delete"),
    path("certificate/<int:pk>/registrations/", views.registration_add, name="registration-add"),
    path("registrations/<int:pk>/tick/", views.registration_tick, name="registration-tick"),
]
