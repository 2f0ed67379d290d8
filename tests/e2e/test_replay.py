"""Replay end to end: an archived event, replayed after its trigger's config changed,
is delivered as it was first sent (old URL, headers and body), as a new event with its
own webhook-id; bulk replay sends each matching event again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    fire_webhook,
    signature_for,
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess

WINDOWS = {  # archived 3 s after firing; kept for a minute
    "EVENTTRIGGER_RETENTION_ACTIVE": "3s",
    "EVENTTRIGGER_RETENTION_TOTAL": "60s",
    "EVENTTRIGGER_RETENTION_INTERVAL": "200ms",
}


def _config(sink: Sink, path: str, version: str) -> dict[str, Any]:
    return {
        "endpoint": sink.url(path),
        "headers": {"X-Version": version},
        "schema": {"type": "object"},
        "timeout": "1s",
        "retry": {"max_attempts": 1},  # the retry span fits the 3 s active window
    }


async def _in_archive_table(db: Database, event_id: str) -> bool:
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT id FROM event_logs_archive WHERE id = %s", (event_id,))
    return row is not None


async def test_replay_of_an_archived_event_sends_the_old_request_after_an_edit(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch(**WINDOWS)
    async with api(proc) as client:
        trigger = await create_trigger(client, "webhook", _config(sink, "/old", "1"))
        original = await fire_webhook(trigger["webhook_url"], {"order": 42})
        await wait_for_event(db, original, "success")
        edited = await client.patch(
            f"/api/v1/triggers/{trigger['id']}", json={"config": _config(sink, "/new", "2")}
        )
        assert edited.status_code == 200, edited.text

        async def archived() -> bool:
            listed = await client.get("/api/v1/events", params={"view": "archived"})
            in_view = original in [i["id"] for i in listed.json()["items"]]
            return in_view and await _in_archive_table(db, original)

        await wait_until(archived, timeout=20)

        answer = await client.post(f"/api/v1/events/{original}/replay")
        assert answer.status_code == 202, answer.text
        replay = answer.json()["event_id"]
        first, again = await sink.wait_for("/old", 2)
        event = (await client.get(f"/api/v1/events/{replay}")).json()
        attempts = (await client.get(f"/api/v1/events/{replay}/attempts")).json()["items"]

    assert sink.at("/new") == []  # the edit does not reach a replay
    assert again.method == first.method == "POST"
    assert again.body == first.body and again.json() == {"order": 42}
    assert again.headers["X-Version"] == first.headers["X-Version"] == "1"
    assert first.headers["webhook-id"] == original
    assert again.headers["webhook-id"] == replay != original  # a new webhook-id
    assert again.headers["webhook-signature"] == signature_for(trigger["signing_secret"], again)
    assert event["source"] == "replay" and event["replay_of"] == original
    assert event["trigger_id"] == trigger["id"]
    await wait_for_event(db, replay, "success")
    assert [a["attempt"] for a in attempts] in ([], [1])  # fresh attempts, from 1


async def test_bulk_replay_sends_every_matching_event_again_oldest_first(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(client, "webhook", _config(sink, "/bulk", "1"))
        originals = [await fire_webhook(trigger["webhook_url"], {"n": n}) for n in range(3)]
        for event_id in originals:
            await wait_for_event(db, event_id, "success")
        answer = await client.post("/api/v1/events/replay", json={"trigger_id": trigger["id"]})
        assert answer.status_code == 202, answer.text
        replays = answer.json()["event_ids"]
        got = await sink.wait_for("/bulk", 6)
        metrics = (await client.get("/metrics")).text

    assert len(replays) == 3
    replayed = {r.headers["webhook-id"]: r.json() for r in got[3:]}
    assert replayed == {replay: {"n": n} for n, replay in enumerate(replays)}
    assert "eventtrigger_replays_total 3.0" in metrics
