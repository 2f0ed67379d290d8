"""At-least-once delivery, exactly one event log: a job published again (Kafka redelivery,
a re-publish) is skipped, and a worker killed between delivering and recording the
outcome leads to a redelivery with the same webhook-id, still one event log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from eventtrigger.domain.jobs import job_message, message_key
from eventtrigger.store.db import Database, read_json, read_time
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    event_rows,
    fire_webhook,
    log_lines,
    wait_for_event,
    wait_until,
)
from tests.process import EventtriggerProcess

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def _logged(path: Path, action: str, event_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(path)
        if line.get("action") == action and line.get("event_id") == event_id
    ]


async def _wait_logged(path: Path, action: str, event_id: str) -> list[dict[str, Any]]:
    """The lines once at least one is in the file. A process writes its log lines from a
    thread, in batches, after the work they record: a line can reach the file a while
    after the database shows the outcome (tens of ms, seconds on a loaded machine)."""

    async def present() -> list[dict[str, Any]]:
        return _logged(path, action, event_id)

    lines: list[dict[str, Any]] = await wait_until(present, timeout=15)
    return lines


async def _create_webhook(client: httpx.AsyncClient, endpoint: str, **config: Any) -> str:
    trigger = await create_trigger(
        client, "webhook", {"endpoint": endpoint, "schema": SCHEMA, **config}, name="dup"
    )
    url: str = trigger["webhook_url"]
    return url


async def test_same_job_published_twice_gives_one_event_log(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        webhook_url = await _create_webhook(client, sink.url("/dup"))
    event_id = await fire_webhook(webhook_url, {"n": 1})
    await sink.wait_for("/dup", 1, timeout=20)
    await wait_for_event(db, event_id, "success", timeout=20)

    # Rebuild the job exactly as the platform publishes it for attempt 1.
    [row] = await event_rows(db, "id = %s", (event_id,))
    job = job_message(
        {
            **row,
            "payload": read_json(row["payload"]),
            "request": read_json(row["request"]),
            "scheduled_at": read_time(row["scheduled_at"]),
            "fired_at": read_time(row["fired_at"]),
            "attempts": 0,
        }
    )
    assert job["attempt"] == 1
    assert job["event_id"] == event_id
    producer = AIOKafkaProducer(bootstrap_servers=proc.env["EVENTTRIGGER_KAFKA_BOOTSTRAP"])
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(
                proc.env["EVENTTRIGGER_KAFKA_TOPIC"], orjson.dumps(job), key=message_key(job)
            )
    finally:
        await producer.stop()

    async def skipped_twice() -> list[dict[str, Any]]:
        lines = _logged(proc.log_path, "duplicate_skipped", event_id)
        return lines if len(lines) >= 2 else []

    skipped = await wait_until(skipped_twice, timeout=20)
    assert [line["attempt"] for line in skipped] == [1, 1]

    [row] = await event_rows(db, "id = %s", (event_id,))
    assert row["status"] == "success"
    assert row["attempts"] == 1
    assert [r["id"] for r in await event_rows(db)] == [event_id]
    assert [r.headers["webhook-id"] for r in sink.at("/dup")] == [event_id]
    assert len(_logged(proc.log_path, "delivered", event_id)) == 1


async def test_worker_crash_after_delivery_before_commit_gives_one_event_log(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    # The first answer takes 3 s: the process is killed while the endpoint holds the
    # request, i.e. after delivery started and before any outcome or offset was stored.
    sink.respond("/crash", (200, {}, 3.0), (200, {}, 0.0))
    proc = launch()
    async with api(proc) as client:
        webhook_url = await _create_webhook(client, sink.url("/crash"), timeout="5s")
    event_id = await fire_webhook(webhook_url, {"n": 2})

    async def request_arrived() -> bool:
        # Counted when the request arrives; recorded in sink.received only once answered.
        return sink._counts["/crash"] >= 1

    await wait_until(request_arrived, timeout=20, interval=0.02)
    proc.kill()
    [row] = await event_rows(db, "id = %s", (event_id,))
    assert row["status"] == "pending"  # the crash came before the outcome was stored
    assert row["attempts"] == 0

    successor = launch(env=proc.env)  # same topic and consumer group
    await wait_for_event(db, event_id, "success", timeout=40)

    rows = await event_rows(db, "id = %s", (event_id,))
    assert len(rows) == 1
    assert rows[0]["attempts"] == 1
    assert rows[0]["last_status_code"] == 200
    assert [r["id"] for r in await event_rows(db)] == [event_id]
    deliveries = await sink.wait_for("/crash", 1, timeout=10)
    assert 1 <= sink._counts["/crash"] <= 2
    assert all(d.headers["webhook-id"] == event_id for d in deliveries)
    assert all(d.json() == {"n": 2} for d in deliveries)
    assert len(await _wait_logged(successor.log_path, "delivered", event_id)) == 1
    # The killed process's log is complete: it never recorded the delivery it made.
    assert _logged(proc.log_path, "delivered", event_id) == []
