"""Retries end to end: backoff between attempts, one event row whatever the number of
attempts, final failures recorded and copied to the dead-letter topic, other 4xx fail at
once, and a Retry-After answer raises the wait."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, create_trigger, event_rows, fire_webhook, wait_for_event
from tests.process import EventtriggerProcess

RETRY = {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"}


async def _webhook(client: httpx.AsyncClient, endpoint: str) -> dict[str, Any]:
    return await create_trigger(
        client,
        "webhook",
        {"endpoint": endpoint, "schema": {"type": "object"}, "retry": RETRY},
        name="retried",
    )


async def test_503_twice_then_success_gives_one_event_with_three_attempts(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/flaky", (503, {}, 0.0), (503, {}, 0.0), (200, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await _webhook(client, sink.url("/flaky"))
    event_id = await fire_webhook(trigger["webhook_url"], {"n": 1})

    requests = await sink.wait_for("/flaky", 3)
    row = await wait_for_event(db, event_id)

    assert [r["id"] for r in await event_rows(db)] == [event_id]  # one row for 3 attempts
    assert row["status"] == "success"
    assert row["attempts"] == 3
    assert row["last_status_code"] == 200
    assert row["last_error"] is None
    assert row["delivered_at"] is not None
    assert [r.headers["webhook-id"] for r in requests] == [event_id] * 3
    assert [r.json() for r in requests] == [{"n": 1}] * 3
    # Attempt 2 waits >= 200 ms after attempt 1, attempt 3 >= 400 ms after attempt 2.
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    print(f"\ngaps between attempts: {[round(g, 3) for g in gaps]} s")
    assert gaps[0] >= 0.2, gaps
    assert gaps[1] >= 0.4, gaps
    assert all(gap < 5.0 for gap in gaps), gaps  # and not wildly later
    await asyncio.sleep(0.8)  # a 4th request would arrive within one backoff + poll
    assert len(sink.at("/flaky")) == 3


async def test_always_500_fails_after_max_attempts_and_goes_to_the_dlq(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/broken", (500, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await _webhook(client, sink.url("/broken"))
    event_id = await fire_webhook(trigger["webhook_url"], {"n": 2})

    row = await wait_for_event(db, event_id)
    assert row["status"] == "failure"
    assert row["attempts"] == RETRY["max_attempts"]
    assert row["last_status_code"] == 500
    assert "500" in row["last_error"]
    assert row["delivered_at"] is None
    assert len(sink.at("/broken")) == RETRY["max_attempts"]
    assert {r.headers["webhook-id"] for r in sink.at("/broken")} == {event_id}

    dead = await _dead_letters(proc.env, event_id)
    assert len(dead) == 1, dead
    [message] = dead
    assert message["trigger_id"] == trigger["id"]
    assert message["attempt"] == RETRY["max_attempts"]
    assert message["final_status_code"] == 500
    assert "500" in message["final_error"]
    assert message["request"]["url"] == sink.url("/broken")


async def _dead_letters(
    env: dict[str, str], event_id: str, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Every message on the process's dead-letter topic for `event_id`, read from the
    beginning with a fresh consumer group; waits until at least one is there."""
    topic = env["EVENTTRIGGER_KAFKA_TOPIC"] + ".dlq"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=env["EVENTTRIGGER_KAFKA_BOOTSTRAP"].split(","),
        group_id=f"{topic}.reader.{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            messages = [orjson.loads(r.value) for rs in batch.values() for r in rs]
            found += [m for m in messages if m.get("event_id") == event_id]
            if found and not messages:
                break  # caught up with the topic after finding it
    finally:
        await consumer.stop()
    return found


async def test_404_fails_after_one_attempt(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/gone", (404, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await _webhook(client, sink.url("/gone"))
    event_id = await fire_webhook(trigger["webhook_url"], {"n": 3})

    row = await wait_for_event(db, event_id)
    assert row["status"] == "failure"
    assert row["attempts"] == 1
    assert row["last_status_code"] == 404
    assert "404" in row["last_error"]
    await asyncio.sleep(0.8)  # a retry would come after 200-240 ms + one 250 ms poll
    assert len(sink.at("/gone")) == 1
    [again] = await event_rows(db, "id = %s", (event_id,))
    assert (again["status"], again["attempts"]) == ("failure", 1)


async def test_retry_after_is_honoured(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/busy", (429, {"Retry-After": "2"}, 0.0), (200, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await _webhook(client, sink.url("/busy"))
    event_id = await fire_webhook(trigger["webhook_url"], {"n": 4})

    [first] = await sink.wait_for("/busy", 1)

    # Between the attempts the row shows the first outcome and waits for the next.
    waiting = await wait_for_event(db, event_id, "retrying", timeout=5.0, interval=0.05)
    assert waiting["attempts"] == 1
    assert waiting["last_status_code"] == 429
    assert "429" in waiting["last_error"]
    assert waiting["next_attempt_at"] is not None
    assert time.time() - first.at < 2.0  # seen while the Retry-After wait still ran

    requests = await sink.wait_for("/busy", 2)
    row = await wait_for_event(db, event_id)
    gap = requests[1].at - requests[0].at
    print(f"\nRetry-After 2: second attempt {gap:.3f} s after the first")
    assert gap >= 2.0, gap  # not the 200 ms backoff
    assert gap < 4.0, gap
    assert row["status"] == "success"
    assert row["attempts"] == 2
    assert row["last_status_code"] == 200
    assert [r.headers["webhook-id"] for r in requests] == [event_id, event_id]
