"""Manual test runs end to end: a saved trigger's test fires once and leaves its schedule
alone; an ephemeral test run persists no trigger and signs with its own fresh secret; a
webhook trigger's test needs a payload that passes its schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from eventtrigger.store.db import Database, read_json, read_time
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    event_rows,
    signature_for,
    start_test_run,
    wait_for_event,
)
from tests.process import EventtriggerProcess


async def _schedules(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        return await tx.fetch_all("SELECT trigger_id, fire_at, status FROM trigger_schedules")


async def test_test_run_of_scheduled_trigger_fires_once_and_persists_nothing(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "cron_scheduled",
            {
                "endpoint": sink.url("/new-year"),
                "cron": "0 0 1 1 *",
                "payload": {"configured": True},
            },
            name="new year",
        )
        assert trigger["next_fire_at"] is not None
        schedules_before = await _schedules(db)
        assert [(s["trigger_id"], s["status"]) for s in schedules_before] == [
            (trigger["id"], "pending")
        ]

        tested = await client.post(
            f"/api/v1/triggers/{trigger['id']}/test", json={"payload": {"probe": 7}}
        )
        assert tested.status_code == 202, tested.text
        event_id = tested.json()["event_id"]

        [delivery] = await sink.wait_for("/new-year", 1, timeout=20)
        assert delivery.json() == {"probe": 7}
        assert delivery.headers["webhook-id"] == event_id
        assert delivery.headers["webhook-signature"] == signature_for(
            trigger["signing_secret"], delivery
        )

        row = await wait_for_event(db, event_id, "success", timeout=20)
        assert len(sink.at("/new-year")) == 1  # the event finished; nothing more was sent
        assert row["trigger_id"] == trigger["id"]
        assert row["trigger_type"] == "cron_scheduled"
        assert row["is_test_run"] == 1
        assert row["source"] == "manual-test"
        assert row["note"] == "test run"
        assert row["occurrence_id"] is None
        assert read_time(row["scheduled_at"]) == read_time(row["fired_at"])
        assert read_json(row["payload"]) == {"probe": 7}
        assert row["attempts"] == 1
        assert [r["id"] for r in await event_rows(db)] == [event_id]

        # The schedule is untouched: the same one pending occurrence, at the same time.
        assert await _schedules(db) == schedules_before
        after = await client.get(f"/api/v1/triggers/{trigger['id']}")
        assert after.status_code == 200
        assert after.json()["next_fire_at"] == trigger["next_fire_at"]
        assert after.json()["status"] == "active"


async def test_test_run_without_body_sends_the_configured_payload(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "interval_scheduled",
            {"endpoint": sink.url("/hourly"), "every": "1h", "payload": {"configured": [1, 2]}},
            name="hourly",
        )
        tested = await client.post(f"/api/v1/triggers/{trigger['id']}/test")
        assert tested.status_code == 202, tested.text
        event_id = tested.json()["event_id"]

    [delivery] = await sink.wait_for("/hourly", 1, timeout=20)
    assert delivery.json() == {"configured": [1, 2]}
    row = await wait_for_event(db, event_id, "success", timeout=20)
    assert row["source"] == "manual-test"
    assert row["is_test_run"] == 1
    assert len(sink.at("/hourly")) == 1


async def test_ephemeral_test_run_persists_no_trigger(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        body = await start_test_run(
            client,
            "interval_scheduled",
            {
                "endpoint": sink.url("/ephemeral"),
                "every": "1h",
                "headers": {"X-Probe": "yes"},
                "payload": {"from": "config"},
            },
            {"from": "top-level"},
        )
    event_id, secret = body["event_id"], body["signing_secret"]
    assert secret.startswith("whsec_")

    [delivery] = await sink.wait_for("/ephemeral", 1, timeout=20)
    assert delivery.json() == {"from": "top-level"}  # a top-level payload wins
    assert delivery.headers["X-Probe"] == "yes"
    assert delivery.headers["webhook-id"] == event_id
    assert delivery.headers["webhook-signature"] == signature_for(secret, delivery)

    row = await wait_for_event(db, event_id, "success", timeout=20)
    assert row["trigger_id"] is None
    assert row["trigger_type"] == "interval_scheduled"
    assert row["is_test_run"] == 1
    assert row["source"] == "manual-test"
    assert row["note"] == "test run"
    assert read_time(row["scheduled_at"]) == read_time(row["fired_at"])
    assert len(sink.at("/ephemeral")) == 1
    async with db.connection() as tx:
        triggers = await tx.fetch_all("SELECT id FROM triggers")
        schedules = await tx.fetch_all("SELECT id FROM trigger_schedules")
    assert triggers == []
    assert schedules == []


async def test_webhook_trigger_test_needs_a_payload_that_passes_its_schema(
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
                "schema": {
                    "type": "object",
                    "required": ["order_id"],
                    "properties": {"order_id": {"type": "integer"}},
                },
            },
            name="orders",
        )
        test_url = f"/api/v1/triggers/{trigger['id']}/test"

        missing = await client.post(test_url)
        empty = await client.post(test_url, json={})
        invalid = await client.post(test_url, json={"payload": {"order_id": "x"}})
        assert await event_rows(db) == []  # none of them created an event
        valid = await client.post(test_url, json={"payload": {"order_id": 5}})

    for refused in (missing, empty):
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in refused.json()["errors"]] == ["payload"]
    assert invalid.status_code == 400, invalid.text
    assert invalid.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in invalid.json()["errors"]] == ["payload.order_id"]

    assert valid.status_code == 202, valid.text
    [delivery] = await sink.wait_for("/orders", 1, timeout=20)
    assert delivery.json() == {"order_id": 5}
    row = await wait_for_event(db, valid.json()["event_id"], "success", timeout=20)
    assert row["is_test_run"] == 1
    assert [r["id"] for r in await event_rows(db)] == [row["id"]]
