"""Forms of the two-factor pages and the audit log's filters."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import AuditAction


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        label=_("Action"), choices=[("", _("All")), *AuditAction.choices], required=False
    )
    user = forms.CharField(label=_("User"), max_length=150, required=False)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return data
