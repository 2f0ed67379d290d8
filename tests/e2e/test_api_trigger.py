"""API (webhook) triggers end to end: a valid payload is delivered and logged, an invalid
one is refused with 400 and creates no event."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database, read_json
from tests.e2e.conftest import Sink, create_trigger, event_rows, signature_for, wait_until
from tests.process import EventtriggerProcess


async def test_api_trigger_fires_valid_payload_and_rejects_invalid_one(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/orders"),
                "headers": {"X-Tenant": "acme"},
                "schema": {
                    "type": "object",
                    "required": ["order_id"],
                    "properties": {"order_id": {"type": "integer"}},
                },
            },
            name="orders",
        )
        async with httpx.AsyncClient() as anonymous:
            rejected = await anonymous.post(trigger["webhook_url"], json={"order_id": "x"})
            accepted = await anonymous.post(trigger["webhook_url"], json={"order_id": 42})

    assert rejected.status_code == 400
    assert rejected.headers["content-type"] == "application/problem+json"
    assert rejected.json()["errors"][0]["field"] == "$.order_id"
    assert accepted.status_code == 202
    event_id = accepted.json()["event_id"]

    [delivery] = await sink.wait_for("/orders", 1)
    assert delivery.json() == {"order_id": 42}
    assert delivery.headers["X-Tenant"] == "acme"
    assert delivery.headers["webhook-id"] == event_id
    assert delivery.headers["webhook-signature"] == signature_for(
        trigger["signing_secret"], delivery
    )

    async def succeeded() -> list[dict[str, object]]:
        rows = await event_rows(db)
        return rows if rows and rows[0]["status"] == "success" else []

    [row] = await wait_until(succeeded)  # exactly one event: the rejected call made none
    assert row["id"] == event_id
    assert row["source"] == "api"
    assert read_json(row["payload"]) == {"order_id": 42}
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200
