"""The "Issue OCES certificate" form."""

from __future__ import annotations

from django import forms

from certificates.choices import Environment

from .models import normalise_reference


class IssueForm(forms.Form):
    pin = forms.CharField(
        label="PIN",
        max_length=64,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
        help_text="The one-time code MitID Erhverv showed when the certificate profile was created.",
    )
    reference_number = forms.CharField(
        label="Reference number",
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The certificate profile's reference number, with or without spaces.",
    )
    environment = forms.ChoiceField(
        label="Environment",
        choices=Environment.choices,
        initial=Environment.TEST,
        widget=forms.RadioSelect,
        help_text="Test certificates come from the test CA (OU=Test - cti); production ones are real.",
    )

    def clean_reference_number(self) -> str:
        value = self.cleaned_data["reference_number"]
        if not normalise_reference(value):
            raise forms.ValidationError("Enter the reference number.")
        return str(value).strip()
