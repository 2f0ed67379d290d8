"""The SSRF guard: loopback IP literals (IPv4-mapped IPv6 included) are refused when a
trigger is saved; a DNS name that resolves to loopback is refused when the worker connects
(one attempt, no retry, nothing sent); an operator's EVENTTRIGGER_EGRESS_ALLOW_CIDRS lets
the same delivery through."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, start_test_run, wait_for_event
from tests.process import EventtriggerProcess

RETRY = {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"}


# A DNS name (not the literal `localhost`, which is refused when saving) that resolves to
# 127.0.0.1: this machine's host name on a usual Debian /etc/hosts, or `loopback.test`,
# which compose.yaml maps for the test container (a container's host name resolves to its
# own network address instead).
LOOPBACK_NAMES = (socket.gethostname(), "loopback.test")


def _local_name() -> tuple[str, str]:
    """A host name that resolves to 127.0.0.1 only, and that address."""
    seen = {}
    for name in LOOPBACK_NAMES:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET)
        except socket.gaierror:
            continue
        addresses = {info[4][0] for info in infos}
        seen[name] = addresses
        if addresses == {"127.0.0.1"}:
            return name, "127.0.0.1"
    raise AssertionError(f"none of {LOOPBACK_NAMES} resolves to 127.0.0.1 only: {seen}")


async def _test_run(client: httpx.AsyncClient, endpoint: str) -> str:
    answer = await start_test_run(
        client,
        "webhook",
        {"endpoint": endpoint, "schema": {"type": "object"}, "retry": RETRY},
        {"probe": True},
    )
    event_id: str = answer["event_id"]
    return event_id


async def test_endpoint_resolving_to_loopback_is_refused_unless_allowed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    name, address = _local_name()
    guarded = launch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="")
    async with api(guarded) as client:
        # Save time: IP literals are judged at once, whatever their spelling.
        for endpoint in (
            sink.url("/x"),
            f"http://[::ffff:127.0.0.1]:{sink.port}/x",
            f"http://localhost:{sink.port}/x",
        ):
            refused = await client.post(
                "/api/v1/triggers",
                json={
                    "name": "ssrf",
                    "type": "webhook",
                    "config": {"endpoint": endpoint, "schema": {"type": "object"}},
                },
            )
            assert refused.status_code == 400, (endpoint, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            errors = refused.json()["errors"]
            assert [e["field"] for e in errors] == ["config.endpoint"], (endpoint, errors)
            assert "loopback" in errors[0]["message"]

        # Connect time: a DNS name is accepted, but what it resolves to is refused.
        event_id = await _test_run(client, f"http://{name}:{sink.port}/guarded")
    row = await wait_for_event(db, event_id, timeout=20.0)
    print(f"\nrefused delivery to {name!r}: {row['last_error']}")
    assert row["status"] == "failure"
    assert row["attempts"] == 1  # refused by policy: no retry
    assert row["last_status_code"] is None
    assert "refused" in row["last_error"], row["last_error"]
    assert address in row["last_error"], row["last_error"]
    assert sink.at("/guarded") == []
    assert sink.received == []

    # The operator allows that address: the same delivery goes through.
    allowed = launch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS=f"{address}/32")
    async with api(allowed) as client:
        event_id = await _test_run(client, f"http://{name}:{sink.port}/allowed")
    [delivery] = await sink.wait_for("/allowed", 1)
    assert delivery.headers["webhook-id"] == event_id
    assert delivery.json() == {"probe": True}
    row = await wait_for_event(db, event_id, timeout=20.0)
    assert row["status"] == "success"
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200
    assert sink.at("/guarded") == []
