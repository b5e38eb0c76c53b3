"""The addresses the portal never connects to on a user's word: TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS
(link-local and cloud metadata, this-network, multicast, and loopback in production). One rule for every
outbound connection a user can point somewhere: the endpoint scanner and the alert channels."""

from __future__ import annotations

import ipaddress

from django.conf import settings

# NAT64 (RFC 6052): an IPv4 address in the last 32 bits, reached through a gateway that translates.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS]


def is_blocked(address: str) -> bool:
    """Whether `address` (an IP address, not a name) is in a blocked network. An IPv4 address carried in
    IPv6 (mapped, 6to4, NAT64 64:ff9b::/96) is judged as that IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return any(ip.version == network.version and ip in network for network in blocked_networks())
