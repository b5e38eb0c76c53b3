"""The "Issue OCES certificate" form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from certificates.choices import Environment
from certificates.models import Organization

from .models import CertificateProfile, normalise_reference


class IssueForm(forms.Form):
    pin = forms.CharField(
        label=_("PIN"),
        max_length=64,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
        help_text=_("The one-time code MitID Erhverv showed when the certificate profile was created."),
    )
    reference_number = forms.CharField(
        label=_("Reference number"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("The certificate profile's reference number, with or without spaces."),
    )
    environment = forms.ChoiceField(
        label=_("Environment"),
        choices=Environment.choices,
        initial=Environment.TEST,
        widget=forms.RadioSelect,
        help_text=_("Test certificates come from the test CA (OU=Test - cti); production ones are real."),
    )

    def clean_reference_number(self) -> str:
        value = self.cleaned_data["reference_number"]
        if not normalise_reference(value):
            raise forms.ValidationError(_("Enter the reference number."))
        return str(value).strip()


RENEWAL_ENABLED_CHOICES = [
    ("", _("Not known yet")),
    ("yes", _("Yes: Digst has enabled renewal")),
    ("no", _("No: not enabled (ask mitiderhverv@digst.dk)")),
]


class ProfileForm(forms.ModelForm):
    """A certificate profile, with the organisation it belongs to (found or created by CVR)."""

    cvr = forms.RegexField(
        label=_("CVR"),
        regex=r"^\d{8}$",
        error_messages={"invalid": _("A CVR number has 8 digits.")},
        max_length=8,
    )
    organisation_name = forms.CharField(label=_("Organisation name"), max_length=200, required=False)
    renewal_enabled = forms.ChoiceField(
        label=_("Renewal enabled for the organisation"),
        choices=RENEWAL_ENABLED_CHOICES,
        required=False,
        help_text=_("Digst enables renewal per organisation on request by e-mail to mitiderhverv@digst.dk."),
    )

    class Meta:
        model = CertificateProfile
        fields = ["name", "type", "environment", "reference_number", "contact_name", "contact_email"]
        labels = {
            "name": _("Profile name"),
            "reference_number": _("Reference number"),
            "contact_email": _("Contact e-mail"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        organization = self.instance.organization if self.instance.pk else None
        if organization is not None:
            self.fields["cvr"].initial = organization.cvr
            self.fields["organisation_name"].initial = organization.name
            self.fields["renewal_enabled"].initial = {True: "yes", False: "no"}.get(
                organization.renewal_enabled, ""
            )

    def clean_reference_number(self) -> str:
        reference = normalise_reference(self.cleaned_data["reference_number"])
        if not reference:
            raise forms.ValidationError(_("Enter the reference number."))
        clash = CertificateProfile.objects.filter(
            environment=self.cleaned_data.get("environment"), reference_number=reference
        ).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("Another profile has this reference number in this environment."))
        return reference

    def save(self, commit: bool = True) -> CertificateProfile:
        organization, _ = Organization.objects.get_or_create(cvr=self.cleaned_data["cvr"])
        if self.cleaned_data["organisation_name"]:
            organization.name = self.cleaned_data["organisation_name"]
        organization.renewal_enabled = {"yes": True, "no": False}.get(self.cleaned_data["renewal_enabled"])
        organization.save()
        self.instance.organization = organization
        return super().save(commit)
