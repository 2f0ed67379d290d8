"""Webhook calls do not wait for Kafka: a call is answered (202) as soon as its event row is
durable, and the job is published afterwards. Here Kafka never acknowledges anything (a
publisher that hangs), and calls, concurrent ones included, still answer at once, each
with its own durable, re-publishable row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from eventtrigger.bus import Publisher
from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.api.app import build_app
from eventtrigger.store.db import Database, read_time
from tests.conftest import TEST_API_KEY

CALLS = 20


class HangingPublisher(Publisher):
    """Kafka unreachable: every publish waits until the test ends, then fails."""

    def __init__(self) -> None:  # no producer: nothing here talks to Kafka
        self.attempts = 0
        self.released = asyncio.Event()

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        self.attempts += 1
        await self.released.wait()
        return False


async def test_webhook_calls_answer_once_the_row_is_durable_while_kafka_hangs(
    migrated: Settings, db: Database
) -> None:
    settings = migrated
    publisher = HangingPublisher()
    metrics = Metrics()
    res = Resources(
        settings=settings,
        clock=SystemClock(),
        db=db,
        health=Health(("api",), {}),
        metrics=metrics,
        stats=StatsKeeper(
            db, Windows(settings.retention_active, settings.retention_total), metrics
        ),
        publisher=publisher,
    )
    transport = httpx.ASGITransport(app=build_app(res, api=True))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    ) as client:
        created = await client.post(
            "/api/v1/triggers",
            json={
                "name": "no kafka",
                "type": "webhook",
                "config": {"endpoint": "https://example.com/hook", "schema": {"type": "object"}},
            },
        )
        assert created.status_code == 201, created.text
        path = "/api/v1/webhook/" + created.json()["webhook_url"].rsplit("/", 1)[1]

        started = time.monotonic()
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.post(path, json={"n": n}) for n in range(CALLS))), 5.0
        )
        took = time.monotonic() - started

    assert [a.status_code for a in answers] == [202] * CALLS
    assert took < 2.0, took  # no call waited for the (hanging) publish
    event_ids = {a.json()["event_id"] for a in answers}
    assert len(event_ids) == CALLS
    async with db.connection() as tx:
        rows = await tx.fetch_all("SELECT * FROM event_logs")
    assert {r["id"] for r in rows} == event_ids
    for row in rows:
        # Durable and unfinished, with a deadline: the re-publisher sends it when it passes.
        assert row["status"] == "pending"
        deadline = read_time(row["next_attempt_at"])
        fired = read_time(row["fired_at"])
        assert deadline is not None and fired is not None
        assert deadline - fired == settings.recovery_after
        assert deadline - fired > timedelta(0)
    assert publisher.attempts >= 1  # publishing was under way (and hanging) meanwhile
    publisher.released.set()
