"""The allow-list by host name (EVENTTRIGGER_EGRESS_ALLOW_HOSTS): which names it takes, and
that a named host passes the guard whatever it resolves to while no other name does."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventtrigger.config import SettingsError, load_settings
from eventtrigger.domain.egress import Egress, allowed_host, host_refusal, name_refusal, refusal
from eventtrigger.domain.errors import InvalidInput
from eventtrigger.domain.triggers import Limits, validate_create

ECHO = Egress(hosts=frozenset({"echo", "host.docker.internal", "localhost"}))
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("item", "key"),
    [
        ("echo", "echo"),
        (" Echo ", "echo"),
        ("host.docker.internal.", "host.docker.internal"),
        ("My_Service", "my_service"),
        ("a-b.example.com", "a-b.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_allowed_host_takes_dns_names_in_their_compared_spelling(item: str, key: str) -> None:
    assert allowed_host(item) == key


@pytest.mark.parametrize(
    "item", ["127.0.0.1", "::1", "[::1]", "10.0.0.0/8", "10.0.0.1/8", "fd00::/8", "127.1", "0x7f.1"]
)
def test_allowed_host_refuses_addresses_and_points_to_the_cidr_list(item: str) -> None:
    with pytest.raises(ValueError, match="EVENTTRIGGER_EGRESS_ALLOW_CIDRS"):
        allowed_host(item)


@pytest.mark.parametrize(
    "item", ["*.example.com", "-echo", "echo-", "a..b", "echo:8080", "http://echo", "a b", "x" * 64]
)
def test_allowed_host_refuses_what_is_not_a_host_name(item: str) -> None:
    with pytest.raises(ValueError, match="is not a host name"):
        allowed_host(item)


@pytest.mark.parametrize("host", ["echo", "ECHO", "echo.", "Host.Docker.Internal", "localhost"])
def test_a_named_host_passes_whatever_it_resolves_to(host: str) -> None:
    for address in ("127.0.0.1", "10.1.2.3", "172.18.0.5", "169.254.169.254", "::1", "fd00::1"):
        assert name_refusal(host, ip(address), ECHO) is None
    assert host_refusal(host, ECHO) is None


@pytest.mark.parametrize("host", ["echo2", "echo.example.com", "x.echo", "docker.internal"])
def test_only_the_exact_name_is_allowed(host: str) -> None:
    why = name_refusal(host, ip("172.18.0.5"), ECHO)
    assert why is not None
    assert "private" in why
    # The message says how to allow it: by address or by this very name.
    assert "EVENTTRIGGER_EGRESS_ALLOW_CIDRS" in why
    assert f"EVENTTRIGGER_EGRESS_ALLOW_HOSTS names {host}" in why


def test_public_addresses_pass_for_any_name() -> None:
    assert name_refusal("example.com", ip("93.184.215.14"), Egress()) is None


def test_a_host_name_allows_no_address_by_itself() -> None:
    # IP literals are judged by address only: naming a host does not open its address.
    assert refusal(ip("127.0.0.1"), ECHO) is not None
    assert host_refusal("127.0.0.1", ECHO) is not None
    assert host_refusal("[::1]", ECHO) is not None


def test_localhost_subdomains_are_not_allowed_by_localhost() -> None:
    why = host_refusal("api.localhost", ECHO)
    assert why is not None
    assert "loopback" in why


def test_cidrs_and_hosts_together() -> None:
    both = Egress(cidrs=(ipaddress.ip_network("10.0.0.0/8"),), hosts=frozenset({"echo"}))
    assert name_refusal("other", ip("10.9.9.9"), both) is None  # by address
    assert name_refusal("echo", ip("192.168.1.1"), both) is None  # by name
    assert name_refusal("other", ip("192.168.1.1"), both) is not None


def test_bare_networks_are_a_policy_without_names() -> None:
    networks = (ipaddress.ip_network("127.0.0.0/8"),)
    assert Egress.of(networks) == Egress(cidrs=networks)
    assert Egress.of(ECHO) is ECHO
    assert name_refusal("localhost", ip("::1"), networks) is not None


def test_trigger_validation_accepts_a_named_host_and_refuses_it_unnamed() -> None:
    body = {
        "name": "n",
        "type": "webhook",
        "config": {"endpoint": "http://localhost:9000/in", "schema": {"type": "object"}},
    }
    validate_create(body, NOW, Limits(egress_allow=ECHO))
    with pytest.raises(InvalidInput) as refused:
        validate_create(body, NOW, Limits(egress_allow=Egress(hosts=frozenset({"echo"}))))
    [error] = refused.value.errors
    assert error.field == "config.endpoint"
    assert "EVENTTRIGGER_EGRESS_ALLOW_HOSTS names localhost" in error.message


def _load(**values: str) -> Egress:
    environ = {f"EVENTTRIGGER_{k}": v for k, v in values.items()}
    return load_settings(environ=environ, env_file=None).egress


def test_settings_read_both_lists_into_one_policy() -> None:
    egress = _load(
        EGRESS_ALLOW_HOSTS=" echo, Host.Docker.Internal. ,,", EGRESS_ALLOW_CIDRS="10.0.0.0/8"
    )
    assert egress == Egress(
        cidrs=(ipaddress.ip_network("10.0.0.0/8"),),
        hosts=frozenset({"echo", "host.docker.internal"}),
    )
    assert _load() == Egress()


@pytest.mark.parametrize(
    ("raw", "hint"), [("echo,10.0.0.2", "ALLOW_CIDRS"), ("*.svc", "host name")]
)
def test_settings_refuse_a_bad_host_naming_the_variable(raw: str, hint: str) -> None:
    with pytest.raises(SettingsError, match=hint) as refused:
        _load(EGRESS_ALLOW_HOSTS=raw)
    assert refused.value.variable == "EVENTTRIGGER_EGRESS_ALLOW_HOSTS"


def test_example_env_documents_the_variable() -> None:
    example = (Path(__file__).parents[2] / "config" / "example.env").read_text()
    assert "EVENTTRIGGER_EGRESS_ALLOW_HOSTS=" in example
