"""Which addresses deliveries may reach (the SSRF policy), as pure functions.

Used at save time on IP-literal and `localhost` endpoints, and at connect time (issue of
the delivery client) on the address actually connected to, so DNS tricks cannot bypass it.
Anything that is not a global unicast address is refused unless an operator allowed it
with EVENTTRIGGER_EGRESS_ALLOW_CIDRS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not all caught by `is_global`, or worth naming: CGNAT, cloud metadata services.
_ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "169.254.0.0/16", "fd00:ec2::254/128", "224.0.0.0/4", "ff00::/8")
)


def refusal(address: IPAddress, allowed: Iterable[IPNetwork]) -> str | None:
    """None if deliveries may connect to `address`; else why not."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in net for net in allowed if net.version == address.version):
        return None
    if address.is_loopback:
        kind = "loopback"
    elif address.is_link_local:
        kind = "link-local"
    elif address.is_multicast:
        kind = "multicast"
    elif address.is_private:
        kind = "private"
    elif any(address in net for net in _ALWAYS_REFUSED if net.version == address.version):
        kind = "reserved"
    elif not address.is_global or address.is_reserved or address.is_unspecified:
        kind = "non-public"
    else:
        return None
    return (
        f"{address} is a {kind} address; deliveries may reach it only if "
        "EVENTTRIGGER_EGRESS_ALLOW_CIDRS includes it"
    )


def host_refusal(host: str, allowed: Iterable[IPNetwork]) -> str | None:
    """Save-time check of a URL host: IP literals and localhost only (DNS is for connect time)."""
    bare = host.strip("[]").lower().rstrip(".")
    if bare == "localhost" or bare.endswith(".localhost"):
        return refusal(ipaddress.ip_address("127.0.0.1"), allowed)
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        # Shorthand IPv4 such as 127.1 or 0x7f.1 still connects to an address.
        if not bare or not all(c in "0123456789abcdefx." for c in bare):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return refusal(address, allowed)
