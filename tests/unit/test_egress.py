"""The SSRF policy: which addresses deliveries may reach, and the save-time host check."""

from __future__ import annotations

import ipaddress

import pytest

from eventtrigger.domain.egress import host_refusal, refusal

NONE: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
LOOPBACK_V4 = (ipaddress.ip_network("127.0.0.0/8"),)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("192.168.255.255", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "reserved"),  # CGNAT
        ("100.127.255.254", "reserved"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("fd00::1", "private"),  # ULA
        ("fc00::1", "private"),
        ("fd00:ec2::254", "private"),  # AWS IPv6 metadata
    ],
)
def test_non_public_addresses_refused_with_their_kind(address: str, kind: str) -> None:
    why = refusal(ip(address), NONE)
    assert why is not None
    assert f"is a {kind} address" in why
    assert "EVENTTRIGGER_EGRESS_ALLOW_CIDRS" in why


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "::", "255.255.255.255", "192.0.2.1", "198.18.0.1", "240.0.0.1"]
)
def test_unspecified_broadcast_and_reserved_refused(address: str) -> None:
    assert refusal(ip(address), NONE) is not None


@pytest.mark.parametrize(
    ("address", "unmapped"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("::ffff:192.168.1.1", "192.168.1.1"),
    ],
)
def test_ipv4_mapped_ipv6_is_judged_as_ipv4(address: str, unmapped: str) -> None:
    why = refusal(ip(address), NONE)
    assert why is not None
    assert why.startswith(f"{unmapped} is a ")


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111"],
)
def test_public_addresses_allowed(address: str) -> None:
    assert refusal(ip(address), NONE) is None


def test_mapped_public_address_allowed() -> None:
    assert refusal(ip("::ffff:8.8.8.8"), NONE) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::ffff:127.0.0.1"])
def test_allow_list_lets_loopback_through(address: str) -> None:
    assert refusal(ip(address), LOOPBACK_V4) is None


@pytest.mark.parametrize("address", ["::1", "10.0.0.1", "169.254.169.254"])
def test_allow_list_only_covers_its_own_networks(address: str) -> None:
    assert refusal(ip(address), LOOPBACK_V4) is not None


def test_allow_list_of_several_networks_and_versions() -> None:
    allowed = (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128"))
    assert refusal(ip("10.1.2.3"), allowed) is None
    assert refusal(ip("::1"), allowed) is None
    assert refusal(ip("10.2.0.1"), allowed) is not None
    assert refusal(ip("127.0.0.1"), allowed) is not None


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("localhost", "127.0.0.1"),
        ("LOCALHOST", "127.0.0.1"),
        ("localhost.", "127.0.0.1"),
        ("foo.localhost", "127.0.0.1"),
        ("a.b.localhost", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.5", "10.0.0.5"),
        ("169.254.169.254", "169.254.169.254"),
        ("[::ffff:127.0.0.1]", "127.0.0.1"),
        ("[fd00::1]", "fd00::1"),
    ],
)
def test_host_refusal_for_localhost_and_ip_literals(host: str, shown: str) -> None:
    why = host_refusal(host, NONE)
    assert why is not None
    assert why.startswith(f"{shown} is a ")


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "hooks.example.org",
        "localhost.example.com",  # a real DNS name, not the localhost zone
        "mylocalhost",
        "internal.corp",  # DNS names are checked when connecting, not at save time
        "8.8.8.8",
        "[2606:4700::1111]",
    ],
)
def test_host_refusal_none_for_dns_names_and_public_literals(host: str) -> None:
    assert host_refusal(host, NONE) is None


@pytest.mark.parametrize("host", ["localhost", "foo.localhost", "127.0.0.1", "127.0.0.2"])
def test_host_refusal_respects_allow_list(host: str) -> None:
    assert host_refusal(host, LOOPBACK_V4) is None


@pytest.mark.parametrize(
    ("address", "form", "inner", "kind"),
    [
        ("2002:7f00:1::1", "6to4", "127.0.0.1", "loopback"),  # Python calls it global
        ("2002:a00:1::1", "6to4", "10.0.0.1", "private"),
        ("2002:a9fe:a9fe::1", "6to4", "169.254.169.254", "link-local"),
        ("2002:6440:1::1", "6to4", "100.64.0.1", "reserved"),
        ("::7f00:1", "IPv4-compatible", "127.0.0.1", "loopback"),
        ("::a00:1", "IPv4-compatible", "10.0.0.1", "private"),
        # Teredo: server 65.54.227.120, client 127.0.0.1 (stored inverted: 80ff:fffe).
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo", "127.0.0.1", "loopback"),
        ("2001:0:a00:1::4136:e378", "Teredo", "10.0.0.1", "private"),  # private server
    ],
)
def test_ipv6_forms_carrying_a_private_ipv4_are_refused_naming_it(
    address: str, form: str, inner: str, kind: str
) -> None:
    why = refusal(ip(address), NONE)
    assert why is not None
    assert f"carries {inner} ({form}), a {kind} address" in why
    assert "EVENTTRIGGER_EGRESS_ALLOW_CIDRS" in why


@pytest.mark.parametrize(
    ("address", "translated", "kind"),
    [
        ("64:ff9b::7f00:1", "127.0.0.1", "loopback"),  # NAT64 translates to the IPv4
        ("64:ff9b::a00:1", "10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254", "link-local"),
    ],
)
def test_nat64_is_judged_as_the_ipv4_it_translates_to(
    address: str, translated: str, kind: str
) -> None:
    why = refusal(ip(address), NONE)
    assert why is not None
    assert why.startswith(f"{translated} is a {kind} address")


@pytest.mark.parametrize("address", ["2002:808:808::1", "64:ff9b::808:808"])
def test_6to4_and_nat64_of_a_public_ipv4_allowed(address: str) -> None:
    # An IPv6-only network with DNS64 reaches every IPv4 site through 64:ff9b::/96.
    assert refusal(ip(address), NONE) is None


@pytest.mark.parametrize(
    "address",
    [
        "::808:808",  # IPv4-compatible is deprecated: never global, whatever it carries
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo of public addresses: not global
        "64:ff9b:1::808:808",  # NAT64 local-use prefix (RFC 8215)
    ],
)
def test_other_ipv6_transition_forms_refused(address: str) -> None:
    assert refusal(ip(address), NONE) is not None


@pytest.mark.parametrize("address", ["2002:7f00:1::1", "64:ff9b::7f00:1"])
def test_allow_list_covers_the_carried_ipv4(address: str) -> None:
    assert refusal(ip(address), LOOPBACK_V4) is None


@pytest.mark.parametrize(
    "host", ["[2002:7f00:1::1]", "[2002:a00:1::1]", "[64:ff9b::7f00:1]", "[::7f00:1]"]
)
def test_host_refusal_for_ipv6_literals_carrying_a_private_ipv4(host: str) -> None:
    assert host_refusal(host, NONE) is not None
