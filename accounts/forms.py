"""The Users page's form: who, which role, active or not."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _

from certificates.models import Organization

from .models import OrganisationLimit, limit_to_organisations
from .roles import Role, role_of


class UserForm(forms.ModelForm):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
    organisations = forms.ModelMultipleChoiceField(
        label=_("Limited to organisations"),
        queryset=Organization.objects.order_by("name", "cvr"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Choose none for all organisations. A limited user sees, counts and acts on only the "
            "certificates of the organisations chosen here."
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("For a new user; leave empty to keep the current password."),
    )

    class Meta:
        model = get_user_model()
        fields = ["username", "email", "is_active"]
        labels = {"is_active": _("Active (may log in)")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = role_of(self.instance)
            limit = OrganisationLimit.objects.filter(user=self.instance).first()
            self.fields["organisations"].initial = list(limit.organizations.all()) if limit else []
        else:
            self.fields["password"].required = True

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if password:
            password_validation.validate_password(password, self.instance)
        return str(password)

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        if self.cleaned_data["password"]:
            user.set_password(self.cleaned_data["password"])
        user.save()
        limit_to_organisations(user, list(self.cleaned_data["organisations"]))
        return user


class ApiTokenForm(forms.Form):
    """A new API token: a name to tell it apart, and an optional lifetime."""

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What the token is for, e.g. “deployment pipeline”."),
    )
    expires_days = forms.IntegerField(
        label=_("Expires after (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=_("Empty: the token works until you revoke it."),
    )
