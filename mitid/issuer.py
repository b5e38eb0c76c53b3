"""MitID Erhverv as an Issuer of the inventory (certificates.issuers): renew and block OCES certificates."""

from __future__ import annotations

from django.db.models import Q

from certificates import vault
from certificates.choices import Source
from certificates.issuers import IssuerOrder
from certificates.models import Certificate
from certificates.x509 import CertificateFileError, read_bundle

from .client import ClientIdentity, RenewalOrder
from .errors import SENTENCES, MitIDError
from .services import client_for

NOT_ENABLED = SENTENCES["renewal_not_enabled"]


class MitIDIssuer:
    """Renews and blocks OCES certificates, authenticated as the certificate itself (mutual TLS)."""

    name = "MitID Erhverv"

    def handles(self, certificate: Certificate) -> bool:
        """Certificates issued through the portal, and imported OCES certificates of either environment."""
        return certificate.source == Source.MITID or bool(certificate.oces_type and certificate.environment)

    def handled(self) -> Q:
        return Q(source=Source.MITID) | (~Q(oces_type="") & ~Q(environment=""))

    def renewal_refusal(self, certificate: Certificate) -> str | None:
        organization = certificate.organization
        if organization is not None and organization.renewal_enabled is False:
            return str(NOT_ENABLED)
        return None

    def request_renewal(self, certificate: Certificate, *, idempotency_key: str) -> IssuerOrder:
        order = client_for(certificate.environment).request_renewal(
            _identity(certificate), idempotency_key=idempotency_key
        )
        return self._order(certificate, order)

    def order_status(self, certificate: Certificate, order_id: str) -> IssuerOrder:
        order = client_for(certificate.environment).order_status(_identity(certificate), order_id)
        return self._order(certificate, order)

    def block(self, certificate: Certificate, *, idempotency_key: str) -> None:
        client_for(certificate.environment).block(_identity(certificate), idempotency_key=idempotency_key)

    def _order(self, certificate: Certificate, order: RenewalOrder) -> IssuerOrder:
        bundle = None
        if order.issued is not None:
            try:
                bundle = read_bundle(order.issued.pkcs12, order.issued.password)
            except CertificateFileError:
                raise MitIDError("unexpected_response", environment=certificate.environment) from None
        return IssuerOrder(order.order_id, order.status, order.retry_after, bundle)


def _identity(certificate: Certificate) -> ClientIdentity:
    """The certificate and its decrypted key, in memory only, for one call."""
    return ClientIdentity(
        certificate_pem=(certificate.pem + certificate.chain_pem).encode(),
        private_key=vault.unseal(certificate.private_key_encrypted),
    )
