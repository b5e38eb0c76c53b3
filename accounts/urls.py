from __future__ import annotations

from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("", views.user_list, name="users"),
    path("new/", views.user_edit, name="user-new"),
    path("<int:pk>/", views.user_edit, name="user-edit"),
]
