"""The allow-list by host name with the real program: a host named in
EVENTTRIGGER_EGRESS_ALLOW_HOSTS is delivered to although it resolves to a loopback
address, at save time and at connect time; the same URL is refused where the name is
not listed. `localhost` stands for a compose service name (tests cannot edit /etc/hosts):
it resolves to 127.0.0.1, where the receiver (this test process) listens, and is refused
without the list."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, e2e_environ, start_test_run, wait_for_event
from tests.process import EventtriggerProcess

RETRY = {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"}


def _config(endpoint: str) -> dict[str, object]:
    return {"endpoint": endpoint, "schema": {"type": "object"}, "retry": RETRY}


async def test_a_listed_host_name_is_delivered_to_whatever_it_resolves_to(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    # No CIDR allows loopback: only the name does.
    proc = launch(EVENTTRIGGER_EGRESS_ALLOW_CIDRS="", EVENTTRIGGER_EGRESS_ALLOW_HOSTS="LocalHost")
    endpoint = f"http://localhost:{sink.port}/named"
    async with api(proc) as client:
        saved = await client.post(
            "/api/v1/triggers",
            json={"name": "named", "type": "webhook", "config": _config(endpoint)},
        )
        assert saved.status_code == 201, saved.text
        answer = await start_test_run(client, "webhook", _config(endpoint), {"n": 1})
        # An address literal is still judged by address: naming a host opens no address.
        literal = await client.post(
            "/api/v1/triggers",
            json={"name": "literal", "type": "webhook", "config": _config(sink.url("/literal"))},
        )
        assert literal.status_code == 400, literal.text
        assert "loopback" in literal.json()["errors"][0]["message"]
    [delivery] = await sink.wait_for("/named", 1)
    assert delivery.headers["webhook-id"] == answer["event_id"]
    assert delivery.json() == {"n": 1}
    row = await wait_for_event(db, answer["event_id"], timeout=20.0)
    assert row["status"] == "success"
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200


async def test_the_same_url_is_refused_where_the_name_is_not_listed(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    endpoint = f"http://localhost:{sink.port}/unlisted"
    env = {
        **e2e_environ(),
        "EVENTTRIGGER_EGRESS_ALLOW_CIDRS": "",
        "EVENTTRIGGER_EGRESS_ALLOW_HOSTS": "echo",
    }

    # Save time: another name on the list does not let `localhost` through.
    api_only = launch(roles="api,scheduler", env=env)
    async with api(api_only) as client:
        refused = await client.post(
            "/api/v1/triggers", json={"name": "n", "type": "webhook", "config": _config(endpoint)}
        )
    assert refused.status_code == 400, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "config.endpoint"
    assert "loopback" in error["message"]
    assert "EVENTTRIGGER_EGRESS_ALLOW_HOSTS names localhost" in error["message"]

    # Connect time: an api that lists the name accepts the job, but the worker that
    # delivers it does not list it, so the delivery is refused there (once, nothing sent).
    launch(roles="worker", env=env)
    listing_api = launch(roles="api", env={**env, "EVENTTRIGGER_EGRESS_ALLOW_HOSTS": "localhost"})
    async with api(listing_api) as client:
        answer = await start_test_run(client, "webhook", _config(endpoint), {"n": 2})
    row = await wait_for_event(db, answer["event_id"], timeout=20.0)
    assert row["status"] == "failure"
    assert row["attempts"] == 1  # refused by policy: no retry
    assert row["last_status_code"] is None
    assert "refused" in row["last_error"], row["last_error"]
    assert "EVENTTRIGGER_EGRESS_ALLOW_HOSTS names localhost" in row["last_error"]
    assert sink.received == []
