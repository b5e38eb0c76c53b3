"""Forms of the endpoints pages: they check the shape of the input; the services check the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext_lazy as _

from certificates.models import Organization, organisation_limit

from .choices import Protocol

# Places where Danish system and organisation certificates are commonly registered (the checklist
# suggests them; any text is accepted).
SUGGESTED_PLACES = [
    "Skatteforvaltningen TastSelv Erhverv",
    "Serviceplatformen",
    "Datafordeleren",
    "NemLog-in IT-system",
]


class _OrganisationMixin:
    """An organisation field offering only the user's organisations; required for a limited user."""

    def _limit_organisations(self, user: AbstractBaseUser | AnonymousUser) -> None:
        field = self.fields["organization"]  # type: ignore[attr-defined]
        limit = organisation_limit(user)  # type: ignore[arg-type]
        field.queryset = Organization.objects.all() if limit is None else limit
        field.required = limit is not None


class EndpointForm(_OrganisationMixin, forms.Form):
    host = forms.CharField(label=_("Host name or IP address"), max_length=300)
    port = forms.CharField(
        label=_("Port"), max_length=5, required=False, help_text=_("Empty: the protocol's usual port.")
    )
    protocol = forms.ChoiceField(
        label=_("Protocol"), choices=Protocol.choices, initial=Protocol.TLS, required=False
    )
    sni = forms.CharField(
        label=_("SNI name"),
        max_length=300,
        required=False,
        help_text=_(
            "The name to ask the server for and to match the certificate against. Empty: the host name."
        ),
    )
    organization = forms.ModelChoiceField(
        label=_("Organisation"), queryset=Organization.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: AbstractBaseUser | AnonymousUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit_organisations(user)


class BulkForm(_OrganisationMixin, forms.Form):
    text = forms.CharField(
        label=_("Endpoints, one a line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("host[:port], port, protocol (tls, smtp, imap, ldap), SNI name; separated by commas."),
    )
    file = forms.FileField(label=_("Or a CSV file"), required=False)
    organization = forms.ModelChoiceField(
        label=_("Organisation"), queryset=Organization.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: AbstractBaseUser | AnonymousUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit_organisations(user)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            raw = upload.read(256 * 1024 + 1)
            try:
                data["text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError(
                    _("The file is not UTF-8 text (save the CSV as UTF-8).")
                ) from None
        if not (data.get("text") or "").strip():
            raise forms.ValidationError(_("Paste a list of endpoints or choose a CSV file."))
        return data


class PlaceForm(forms.Form):
    place = forms.CharField(label=_("Place"), max_length=200)
    done = forms.BooleanField(
        label=_("The certificate is registered there already"), required=False, initial=True
    )
