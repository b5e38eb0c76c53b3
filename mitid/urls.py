from __future__ import annotations

from django.urls import path

from . import views

app_name = "mitid"
urlpatterns = [
    path("issue/", views.issue, name="issue"),
    path("profiles/", views.profile_list, name="profiles"),
    path("profiles/new/", views.profile_edit, name="profile-new"),
    path("profiles/<int:pk>/", views.profile_edit, name="profile-edit"),
]
