"""Which addresses deliveries may reach (the SSRF policy), as pure functions.

Used at save time on IP-literal and `localhost` endpoints, and at connect time (issue of
the delivery client) on the address actually connected to, so DNS tricks cannot bypass it.
Anything that is not a global unicast address is refused unless an operator allowed it:
by address with EVENTTRIGGER_EGRESS_ALLOW_CIDRS, or by host name with
EVENTTRIGGER_EGRESS_ALLOW_HOSTS (a named host may resolve to anything: the operator
vouched for the name, e.g. a compose service, whose address is not known in advance).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_key(host: str) -> str:
    """A host name as the allow-list compares it: lower case, no trailing dot, and in its
    ASCII (IDNA) spelling, which is what the resolver is handed at connect time."""
    bare = host.strip().lower().rstrip(".")
    if not bare.isascii():
        # A name IDNA refuses cannot be looked up either: kept as is, it matches nothing.
        with contextlib.suppress(UnicodeError):
            bare = bare.encode("idna").decode("ascii")
    return bare


@dataclass(frozen=True)
class Egress:
    """What an operator allowed beyond public addresses: networks, judged on the address
    connected to, and host names, judged on the URL's name whatever it resolves to."""

    cidrs: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()  # each as `host_key` spells it

    @classmethod
    def of(cls, allowed: Egress | Iterable[IPNetwork]) -> Egress:
        """`allowed` as a policy; bare networks allow those and no host name."""
        return allowed if isinstance(allowed, Egress) else cls(cidrs=tuple(allowed))

    def names(self, host: str) -> bool:
        """Whether the operator allowed `host` by name (exact match, no wildcards)."""
        return bool(self.hosts) and host_key(host) in self.hosts


# Underscores too: compose service names may have them, and Docker's DNS answers them.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")


def allowed_host(item: str) -> str:
    """An EVENTTRIGGER_EGRESS_ALLOW_HOSTS item as `host_key` spells it; ValueError saying
    why when it is not a plausible DNS name (an address belongs in the CIDR list)."""
    text = item.strip()
    try:
        ipaddress.ip_network(text.strip("[]"), strict=False)  # an address is a /32 or /128
    except ValueError:
        pass
    else:
        raise ValueError(
            f"{text!r} is an IP address or network; allow it with EVENTTRIGGER_EGRESS_ALLOW_CIDRS"
        )
    key = host_key(text)
    labels = key.split(".")
    if not key or len(key) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{text!r} is not a host name (exact names only, no wildcards)")
    if _NUMERIC.fullmatch(labels[-1]):
        # 127.1 or 0x7f.1 still connect to an address: no top-level domain is a number.
        raise ValueError(
            f"{text!r} looks like an IP address; allow it with EVENTTRIGGER_EGRESS_ALLOW_CIDRS"
        )
    return key


# Not all caught by `is_global`, or worth naming: CGNAT, cloud metadata services.
_ALWAYS_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "169.254.0.0/16", "fd00:ec2::254/128", "224.0.0.0/4", "ff00::/8")
)


# IPv6 forms that lead to an IPv4 address. NAT64's well-known prefix (RFC 6052) is
# translated to the IPv4 in its last 32 bits, so it is judged as that address, as an
# IPv4-mapped one is (an IPv6-only network with DNS64 reaches every IPv4 site this way).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# IPv4-compatible addresses (::a.b.c.d, deprecated by RFC 4291): never a global address.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _translated(address: IPAddress) -> IPAddress:
    """The address a connection really reaches when IPv6 merely spells an IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _embedded(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses that tunnelling forms carry, where a relay may deliver the packets:
    6to4 (2002::/16), Teredo (2001::/32: server and client) and IPv4-compatible."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        found += [("Teredo", inner) for inner in address.teredo]
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        found.append(("IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def _kind(address: IPAddress) -> str | None:
    """Which kind of non-public address this is; None for a global unicast one."""
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if any(address in net for net in _ALWAYS_REFUSED if net.version == address.version):
        return "reserved"
    if not address.is_global or address.is_reserved or address.is_unspecified:
        return "non-public"
    return None


def _allowed(address: IPAddress, allowed: Iterable[IPNetwork]) -> bool:
    return any(address in net for net in allowed if net.version == address.version)


def refusal(address: IPAddress, allowed: Egress | Iterable[IPNetwork]) -> str | None:
    """None if deliveries may connect to `address`; else why not (host names play no part)."""
    networks = Egress.of(allowed).cidrs
    address = _translated(address)
    if _allowed(address, networks):
        return None
    kind: str | None = None
    what = f"{address} is a"
    if isinstance(address, ipaddress.IPv6Address):
        # Python calls 2002:7f00:1:: (6to4 for 127.0.0.1) global: the address it carries
        # is judged as if it were the target itself, and named in the message.
        carried = _embedded(address)
        for form, inner in carried:
            if not _allowed(inner, networks) and (kind := _kind(inner)) is not None:
                what = f"{address} carries {inner} ({form}), a"
                break
        if kind is None and any(form != "IPv4-compatible" for form, _ in carried):
            # A tunnel address (6to4, Teredo) goes where the IPv4 it carries goes, so that
            # alone decides; Python's own verdict on the outer prefix changed between 3.11
            # patch releases (Debian's 3.11.2 calls all of 2002::/16 private).
            return None
    kind = kind or _kind(address)
    if kind is None:
        return None
    return (
        f"{what} {kind} address; deliveries may reach it only if "
        "EVENTTRIGGER_EGRESS_ALLOW_CIDRS includes it"
    )


def name_refusal(
    host: str, address: IPAddress, allowed: Egress | Iterable[IPNetwork]
) -> str | None:
    """None if deliveries to the host name `host` may connect to `address`, one it
    resolves to; else why not."""
    egress = Egress.of(allowed)
    if egress.names(host):
        return None
    why = refusal(address, egress)
    return why and f"{why}, or EVENTTRIGGER_EGRESS_ALLOW_HOSTS names {host_key(host)}"


def host_refusal(host: str, allowed: Egress | Iterable[IPNetwork]) -> str | None:
    """Save-time check of a URL host: IP literals and localhost only (DNS is for connect
    time), and nothing for a host the operator allowed by name."""
    egress = Egress.of(allowed)
    if egress.names(host):
        return None
    bare = host.strip("[]").lower().rstrip(".")
    if bare == "localhost" or bare.endswith(".localhost"):
        return name_refusal(host, ipaddress.ip_address("127.0.0.1"), egress)
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
    return refusal(address, egress)
