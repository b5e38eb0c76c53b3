"""How the API shows the inventory. Read-only representations: every change goes through a service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from certificates.choices import Environment, Status
from certificates.models import Certificate, Event, Order, Organization
from endpoints.choices import Protocol
from endpoints.models import Endpoint, Scan
from endpoints.models import Problem as EndpointProblem
from mitid.models import CertificateProfile


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "cvr", "name", "renewal_enabled"]


class CertificateSerializer(serializers.ModelSerializer):
    """A certificate in a list: what the list page shows, and where to read more."""

    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    days_left = serializers.SerializerMethodField()
    situation = serializers.SerializerMethodField(
        help_text="Where it stands, as every page and e-mail says it: key, label and the sentence."
    )
    organisation = serializers.CharField(source="organization.name", default="", read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:certificate-detail")

    class Meta:
        model = Certificate
        fields = [
            "id",
            "url",
            "subject_cn",
            "cvr",
            "organisation",
            "oces_uuid",
            "environment",
            "oces_type",
            "serial_number",
            "fingerprint_sha256",
            "issuer_cn",
            "not_before",
            "not_after",
            "days_left",
            "status",
            "state",
            "situation",
            "source",
            "auto_renew",
        ]

    def get_days_left(self, certificate: Certificate) -> int:
        return certificate.days_left()

    def get_situation(self, certificate: Certificate) -> dict[str, str]:
        return certificate.situation().as_dict()


class ChainLinkSerializer(serializers.Serializer):
    subject_cn = serializers.CharField()
    subject_dn = serializers.CharField()
    not_after = serializers.DateTimeField()
    id = serializers.IntegerField(
        source="pk", allow_null=True, help_text="Set when the issuer is in the inventory."
    )


class RenewalLinkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Certificate
        fields = ["id", "serial_number", "not_before", "not_after", "state"]


class EventSerializer(serializers.ModelSerializer):
    text = serializers.CharField(read_only=True, help_text="The history entry in the reader's language.")
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = Event
        fields = ["id", "certificate", "kind", "actor", "text", "created_at"]


class OrderSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:order-detail")
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "url",
            "certificate",
            "kind",
            "state",
            "is_open",
            "ca_order_id",
            "attempts",
            "next_attempt_at",
            "last_error_code",
            "last_error",
            "requested_by",
            "new_certificate",
            "created_at",
            "completed_at",
        ]


class CertificateDetailSerializer(CertificateSerializer):
    """A certificate's page: every parsed field, state, renewal, chains and history."""

    has_private_key = serializers.BooleanField(read_only=True)
    renew_before_days = serializers.SerializerMethodField()
    renewal_blocker = serializers.SerializerMethodField(
        help_text="Why the portal cannot renew it now, in a sentence; null when it can."
    )
    open_renewal = serializers.SerializerMethodField()
    renewal_chain = serializers.SerializerMethodField(
        help_text="The certificates it renewed and that renewed it, oldest first (itself included)."
    )
    issuer_chain = serializers.SerializerMethodField(help_text="Its issuers, nearest first.")
    events = serializers.SerializerMethodField(help_text="Its history, newest first (at most 200).")

    class Meta(CertificateSerializer.Meta):
        fields = [
            *CertificateSerializer.Meta.fields,
            "subject_dn",
            "subject_organization",
            "issuer_dn",
            "key_algorithm",
            "key_size",
            "signature_algorithm",
            "is_ca",
            "subject_alt_names",
            "policies",
            "ocsp_urls",
            "crl_urls",
            "chain_verified",
            "verification_error",
            "has_private_key",
            "renew_before_days",
            "renew_at",
            "renewal_blocker",
            "open_renewal",
            "renewal_chain",
            "issuer_chain",
            "events",
        ]

    def get_renew_before_days(self, certificate: Certificate) -> int:
        return certificate.renew_before.days

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_renewal_blocker(self, certificate: Certificate) -> str | None:
        return None if self.context["open_renewal"] else certificate.renewal_blocker()

    @extend_schema_field(OrderSerializer(allow_null=True))
    def get_open_renewal(self, certificate: Certificate) -> dict[str, Any] | None:
        order = self.context["open_renewal"]
        return OrderSerializer(order, context=self.context).data if order else None

    @extend_schema_field(RenewalLinkSerializer(many=True))
    def get_renewal_chain(self, certificate: Certificate) -> Any:
        return RenewalLinkSerializer(self.context["renewal_chain"], many=True).data

    @extend_schema_field(ChainLinkSerializer(many=True))
    def get_issuer_chain(self, certificate: Certificate) -> Any:
        return ChainLinkSerializer(self.context["issuer_chain"], many=True).data

    @extend_schema_field(EventSerializer(many=True))
    def get_events(self, certificate: Certificate) -> Any:
        return EventSerializer(certificate.events.all()[:200], many=True).data


class ProfileSerializer(serializers.ModelSerializer):
    organisation = OrganisationSerializer(source="organization", read_only=True, allow_null=True)
    certificates = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = CertificateProfile
        fields = [
            "id",
            "name",
            "type",
            "environment",
            "reference_number",
            "contact_name",
            "contact_email",
            "organisation",
            "certificates",
            "created_at",
        ]


# --- requests and answers of the actions -----------------------------------------------------------


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PEM, DER or PKCS#12, at most 1 MiB.")
    password = serializers.CharField(required=False, help_text="Only for a PKCS#12 file or an encrypted key.")


class ImportedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.BooleanField()
    message = serializers.CharField()
    warning = serializers.CharField(allow_null=True)


class ImportAnswerSerializer(serializers.Serializer):
    certificates = ImportedSerializer(many=True)


class IssueRequestSerializer(serializers.Serializer):
    pin = serializers.CharField(help_text="The one-time code from MitID Erhverv. Used once, never stored.")
    reference_number = serializers.CharField()
    environment = serializers.ChoiceField(choices=Environment.choices)


class IssueAnswerSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False when this reference number and PIN had issued it.")
    certificate = CertificateSerializer()


class RenewAnswerSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False when a renewal was already in progress.")
    detail = serializers.CharField()
    order = OrderSerializer()


class RenewalSettingsSerializer(serializers.Serializer):
    auto_renew = serializers.BooleanField()
    renew_before_days = serializers.IntegerField(min_value=1, max_value=365)


class RenewalSettingsAnswerSerializer(RenewalSettingsSerializer):
    changed = serializers.BooleanField()
    renew_at = serializers.DateTimeField()


class BlockAnswerSerializer(serializers.Serializer):
    detail = serializers.CharField()
    certificate = CertificateSerializer()


class Pkcs12AnswerSerializer(serializers.Serializer):
    filename = serializers.CharField()
    password = serializers.CharField(help_text="A fresh random password, shown this once.")
    pkcs12 = serializers.CharField(help_text="The PKCS#12 file, base64.")


class ProblemSerializer(serializers.Serializer):
    """An error (RFC 9457, application/problem+json)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


# --- endpoints -------------------------------------------------------------------------------------------


class ScanSerializer(serializers.ModelSerializer):
    """What one scan of an endpoint saw, or why it saw nothing (`error_code`, `error`)."""

    certificate = serializers.PrimaryKeyRelatedField(read_only=True)
    error = serializers.CharField(source="error_text", read_only=True)

    class Meta:
        model = Scan
        fields = [
            "scanned_at",
            "address",
            "tls_version",
            "certificate",
            "subject_cn",
            "not_after",
            "fingerprint_sha256",
            "name_matches",
            "chain_complete",
            "chain_verified",
            "verification_error",
            "error_code",
            "error",
        ]


class EndpointProblemSerializer(serializers.ModelSerializer):
    class Meta:
        model = EndpointProblem
        fields = ["kind", "certificate", "opened_at", "due_at", "alerted_at"]


class EndpointSerializer(serializers.ModelSerializer):
    """A watched TLS endpoint: where, how, what its last scan saw, and its open problems."""

    url = serializers.HyperlinkedIdentityField(view_name="api:endpoint-detail")
    last_scan = ScanSerializer(read_only=True)
    problems = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "host",
            "port",
            "sni",
            "protocol",
            "organization",
            "certificate",
            "next_scan_at",
            "last_scan",
            "problems",
        ]

    @extend_schema_field(EndpointProblemSerializer(many=True))
    def get_problems(self, endpoint: Endpoint) -> Any:
        return EndpointProblemSerializer(endpoint.problems.filter(closed_at=None), many=True).data


class EndpointRequestSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Host name or IP address (host:port is understood).")
    port = serializers.IntegerField(required=False, help_text="Empty: the protocol's usual port.")
    protocol = serializers.ChoiceField(choices=Protocol.choices, required=False)
    sni = serializers.CharField(required=False, help_text="The name to send as SNI and to match.")
    organization = serializers.IntegerField(required=False, help_text="Required for a user with limits.")


class EndpointBulkRequestSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="One endpoint a line: host[:port], port, protocol, SNI name.")
    organization = serializers.IntegerField(required=False)


class EndpointBulkAnswerSerializer(serializers.Serializer):
    added = EndpointSerializer(many=True)
    present = EndpointSerializer(many=True)
