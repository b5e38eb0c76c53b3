"""Forms of the certificate pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from . import channels
from .choices import ChannelKind, Environment, Status
from .models import AlertChannel, CertificateQuerySet, organisation_limit


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("Certificate file"),
        help_text=_(
            "PEM, DER or PKCS#12 (.pem, .crt, .cer, .der, .p12, .pfx), at most 1 MiB. "
            "A PEM file may hold the chain and the private key too."
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Only for a PKCS#12 file or an encrypted private key."),
    )

    def clean_file(self) -> forms.Field:
        upload = self.cleaned_data["file"]
        limit = settings.TRUSTVIEW_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _(
                    "The file is larger than %(size)s KiB, too large for a certificate file. "
                    "Choose the certificate file itself."
                )
                % {"size": limit // 1024}
            )
        return upload


SORTS = {
    "expiry": ("not_after", "id"),
    "-expiry": ("-not_after", "-id"),
    "name": ("subject_cn", "id"),
}


class CertificateFilterForm(forms.Form):
    """The search and filters above the certificate list (all optional, read from the query string)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *Status.choices]
    )
    environment = forms.ChoiceField(
        label=_("Environment"), required=False, choices=[("", _("Any environment")), *Environment.choices]
    )
    expires_within = forms.IntegerField(
        label=_("Expires within (days)"), required=False, min_value=0, max_value=36500
    )
    renewal = forms.ChoiceField(
        label=_("Renewal"),
        required=False,
        choices=[("", _("Any")), ("in_progress", _("In progress")), ("failing", _("Failing"))],
    )
    situation = forms.ChoiceField(
        label=_("Needs attention"),
        required=False,
        choices=[
            ("", _("Any")),
            ("attention", _("Needs attention")),
            ("lapsed", _("Expired without renewal")),
        ],
    )
    sort = forms.ChoiceField(
        label=_("Sort"),
        required=False,
        choices=[
            ("expiry", _("Expiry, soonest first")),
            ("-expiry", _("Expiry, latest first")),
            ("name", _("Name")),
        ],
    )

    def narrows(self) -> bool:
        """Whether a valid filter or search leaves out some certificates (the order does not)."""
        data = self.cleaned_data if self.is_valid() else {}
        return any(data.get(name) not in (None, "") for name in self.fields if name != "sort")

    def searches(self) -> bool:
        """Whether a valid search text (`q`) was given."""
        return bool(self.is_valid() and (self.cleaned_data.get("q") or "").strip())

    def filter(self, certificates: CertificateQuerySet) -> CertificateQuerySet:
        """The certificates that match the valid filters, in the chosen order (every condition is a
        CertificateQuerySet method, so the list says exactly what the dashboard counts)."""
        data = self.cleaned_data if self.is_valid() else {}
        certificates = certificates.search(data.get("q", ""))
        if data.get("status"):
            certificates = certificates.of_status(data["status"])
        if data.get("environment"):
            certificates = certificates.filter(environment=data["environment"])
        if data.get("expires_within") is not None:
            certificates = certificates.expiring_within(data["expires_within"])
        if data.get("renewal") == "in_progress":
            certificates = certificates.renewing()
        elif data.get("renewal") == "failing":
            certificates = certificates.renewal_failing()
        if data.get("situation") == "attention":
            certificates = certificates.needs_attention()
        elif data.get("situation") == "lapsed":
            certificates = certificates.lapsed()
        return certificates.order_by(*SORTS[data.get("sort") or "expiry"])


class RenewalSettingsForm(forms.Form):
    """Per certificate: renew automatically or not, and how long before expiry."""

    auto_renew = forms.BooleanField(label=_("Renew automatically"), required=False)
    renew_before_days = forms.IntegerField(
        label=_("Renew this many days before expiry"),
        min_value=1,
        max_value=365,
        help_text=_(
            "For a certificate whose lifetime is short compared with this, renewal starts when a "
            "third of its lifetime is left."
        ),
    )


class NotificationSettingsForm(forms.Form):
    """Alert recipients and thresholds; empty means "as configured in the environment"."""

    recipients = forms.CharField(
        label=_("Alert recipients"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("E-mail addresses, one per line or separated by commas. Empty: the administrators."),
    )
    thresholds_days = forms.CharField(
        label=_("Expiry alert thresholds (days)"),
        required=False,
        help_text=_("Days before expiry at which to send an alert, e.g. 30, 14. The smallest is critical."),
    )

    def clean_recipients(self) -> list[str]:
        return _addresses(self.cleaned_data["recipients"])

    def clean_thresholds_days(self) -> list[int]:
        parts = [part.strip() for part in self.cleaned_data["thresholds_days"].replace(";", ",").split(",")]
        parts = [part for part in parts if part]
        if not all(part.isdigit() and 1 <= int(part) <= 365 for part in parts):
            raise forms.ValidationError(_("Enter whole numbers of days from 1 to 365, separated by commas."))
        return sorted({int(part) for part in parts}, reverse=True)


class ContactsForm(forms.Form):
    """A certificate's own contacts: they receive its alerts besides the portal's recipients."""

    contacts = forms.CharField(
        label=_("Contacts"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "E-mail addresses of this certificate's owner or team, one per line or separated by commas. "
            "They receive its alerts besides the portal's recipients."
        ),
    )

    def clean_contacts(self) -> list[str]:
        return _addresses(self.cleaned_data["contacts"])


def _addresses(text: str) -> list[str]:
    """E-mail addresses separated by commas or lines, each once; a ValidationError names any other."""
    addresses = [part.strip() for part in text.replace(",", "\n").splitlines()]
    addresses = [address for address in addresses if address]
    invalid = [address for address in addresses if not _is_email(address)]
    if invalid:
        raise forms.ValidationError(
            _("Not an e-mail address: %(addresses)s.") % {"addresses": ", ".join(invalid)}
        )
    return list(dict.fromkeys(addresses))


def _is_email(value: str) -> bool:
    try:
        validate_email(value)
    except forms.ValidationError:
        return False
    return True


class TrustedCAForm(forms.Form):
    certificate = forms.FileField(
        label=_("CA certificate"),
        help_text=_("One root or issuing CA certificate, PEM or DER (.pem, .crt, .cer, .der)."),
    )

    def clean_certificate(self) -> forms.Field:
        upload = self.cleaned_data["certificate"]
        if upload.size > 64 * 1024:
            raise forms.ValidationError(
                _("The file is larger than 64 KiB, too large for one CA certificate.")
            )
        return upload


class AlertChannelForm(forms.ModelForm):
    """A Teams, Slack or webhook channel. The address and the secret are write-only: a saved channel
    shows a hint of its address, and leaving these fields empty keeps what is stored."""

    url = forms.CharField(
        label=_("Webhook address"),
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "The https:// address that Teams (Workflows: “Post to a channel when a webhook request is "
            "received”), Slack (Incoming Webhooks) or your receiver gave you. It is stored encrypted and "
            "never shown again."
        ),
    )
    secret = forms.CharField(
        label=_("Signing secret (webhook)"),
        required=False,
        strip=False,
        min_length=16,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Webhook only: at least 16 characters, shared with your receiver, which checks the "
            "X-Trustview-Signature header with it. Stored encrypted and never shown again."
        ),
    )

    class Meta:
        model = AlertChannel
        fields = ["name", "kind", "organization", "enabled"]
        labels = {
            "name": _("Name"),
            "kind": _("Kind"),
            "organization": _("Organisation"),
            "enabled": _("Send alerts to this channel"),
        }
        help_texts = {
            "organization": _("Alerts about this organisation's certificates. Empty: every alert."),
        }

    def __init__(self, *args: Any, user: AbstractUser | AnonymousUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = organisation_limit(user)
        field = self.fields["organization"]
        assert isinstance(field, forms.ModelChoiceField)
        if limit is not None:
            field.queryset = limit
            field.required = True  # a limited administrator may not set up portal-wide channels
        field.empty_label = _("All organisations (every alert)")

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"].strip()
        if not url and not self.instance.url_encrypted:
            raise forms.ValidationError(_("Enter the webhook address."))
        if url:
            try:
                url = channels.check_address(url)
            except channels.ChannelAddressError as error:
                raise forms.ValidationError(str(error)) from None
        return url

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (
            cleaned.get("kind") == ChannelKind.WEBHOOK
            and not cleaned.get("secret")
            and not self.instance.secret_encrypted
            and "secret" not in self.errors
        ):
            self.add_error("secret", _("A webhook needs a signing secret."))
        return cleaned
