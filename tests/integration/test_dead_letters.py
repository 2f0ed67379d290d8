"""The dead-letter copy of a final failure is an outbox entry: owed in the transaction that
stores the failure, cleared once Kafka has it, and sent by the re-publisher if the worker
died in between (a copy may go out twice, never not at all)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eventtrigger.bus import Publisher, ensure_topics
from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.delivery import Result
from eventtrigger.domain.jobs import NewEvent, event_dict, job_message
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.retention import run_once
from eventtrigger.roles.scheduler import Scheduler
from eventtrigger.roles.worker import Held, Worker
from eventtrigger.store import deliveries
from eventtrigger.store.db import Database, read_time
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.events import insert_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OWNER = "worker-under-test"


class Kafka(Publisher):
    """Acknowledges every publish and remembers it, by topic; or, with `crash`, never
    returns from a dead-letter publish (the process dies right after its commit)."""

    def __init__(self, crash: bool = False) -> None:  # no producer: nothing talks to Kafka
        self.crash = crash
        self.dying = asyncio.Event()  # set once a crashing publish is under way
        self.sent: list[tuple[str | None, dict[str, Any]]] = []

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        if self.crash and topic is not None:
            self.dying.set()
            await asyncio.Event().wait()
        self.sent += [(topic, m) for m in messages]
        return True


def _resources(settings: Settings, db: Database, clock: FrozenClock, kafka: Publisher) -> Resources:
    metrics = Metrics()
    windows = Windows(settings.retention_active, settings.retention_total)
    return Resources(
        settings=settings, clock=clock, db=db, health=Health(("worker", "scheduler"), {}),
        metrics=metrics, stats=StatsKeeper(db, windows, metrics), publisher=kafka,
    )  # fmt: skip


async def _failed_delivery(
    settings: Settings,
    db: Database,
    kafka: Publisher,
    settled: Callable[[str], Awaitable[bool]],
    signing: dict[str, str] | None = None,
) -> str:
    """An event whose only attempt failed for good, stored by the worker's own outcome path
    (`signing`: the request's signing fields, a fresh secret by default)."""
    event = NewEvent(
        id=new_id(NOW), trigger_id=new_id(NOW), trigger_type="webhook", source="api",
        scheduled_at=NOW, fired_at=NOW, payload={"n": 1},
        request={
            "url": "https://example.com/hook", "method": "POST", "headers": {},
            "timeout": "10s", "retry": {"max_attempts": 1, "initial_delay": "2s", "max_delay": "5m"},
            **(signing or {"signing_secret": new_signing_secret()}),
        },
        next_attempt_at=NOW + settings.recovery_after,
    )  # fmt: skip
    async with db.transaction() as tx:
        await insert_events(tx, [event], NOW)
        assert await deliveries.claim(tx, {event.id: 1}, OWNER, NOW, NOW + timedelta(seconds=5))
    worker = Worker(_resources(settings, db, FrozenClock(NOW), kafka), kafka)
    job = job_message(event_dict(event))
    item = Held(TopicPartition(settings.kafka_topic, 0), 0, job, "example.com")
    attempt = Attempt(event.id, 1, "failure", 500, "HTTP 500", None, None)
    worker._unstored = 1
    worker._outcomes.put_nowait((item, attempt, Result(500, "HTTP 500", None)))
    loop = asyncio.create_task(worker._outcome_loop())
    for _ in range(500):  # until the failure is stored (10 s at most)
        if (await _row(db, event.id))["status"] == "failure":
            break
        await asyncio.sleep(0.02)
    for _ in range(500):  # until the dead-letter copy's fate is settled (10 s at most)
        if await settled(event.id):
            break
        await asyncio.sleep(0.02)
    loop.cancel()
    for task in [loop, *worker._tasks]:  # kill -9: whatever was under way stops here
        task.cancel()
    await asyncio.gather(loop, *worker._tasks, return_exceptions=True)
    return event.id


async def _row(db: Database, event_id: str) -> dict[str, Any]:
    async with db.connection() as tx:
        row = await tx.fetch_one(
            "SELECT status, attempts, dlq_due_at FROM event_logs WHERE id = %s", (event_id,)
        )
    assert row is not None
    return row


def _scheduler(settings: Settings, db: Database, at: datetime, kafka: Publisher) -> Scheduler:
    return Scheduler(_resources(settings, db, FrozenClock(at), kafka), kafka)


async def test_a_dead_letter_copy_lost_in_a_crash_is_sent_by_the_re_publisher(
    migrated: Settings, db: Database
) -> None:
    settings = migrated
    dying = Kafka(crash=True)

    async def publishing(_: str) -> bool:
        return dying.dying.is_set()

    event_id = await _failed_delivery(settings, db, dying, publishing)
    row = await _row(db, event_id)
    assert (row["status"], row["attempts"]) == ("failure", 1)
    owed = read_time(row["dlq_due_at"])
    assert owed is not None  # stored with the failure, in the same transaction

    kafka = Kafka()
    await _scheduler(
        settings, db, owed - timedelta(milliseconds=1), kafka
    ).republisher._republish_dead_letters(owed - timedelta(milliseconds=1))
    assert kafka.sent == []  # not due yet: the worker may still be sending it

    scheduler = _scheduler(settings, db, owed, kafka)
    await scheduler.republisher._republish_dead_letters(owed)
    [(topic, message)] = kafka.sent
    assert topic == settings.dlq_topic
    assert message["event_id"] == event_id
    assert (message["attempt"], message["final_status_code"]) == (1, 500)
    assert message["final_error"] == "HTTP 500"
    assert (await _row(db, event_id))["dlq_due_at"] is None
    await scheduler.republisher._republish_dead_letters(owed + timedelta(hours=1))
    assert len(kafka.sent) == 1  # sent once, then no longer owed


async def test_a_dead_letter_copy_the_worker_sent_is_not_sent_again(
    migrated: Settings, db: Database
) -> None:
    settings = migrated
    kafka = Kafka()

    async def marked_sent(event_id: str) -> bool:
        return (await _row(db, event_id))["dlq_due_at"] is None

    event_id = await _failed_delivery(settings, db, kafka, marked_sent)
    [(topic, message)] = kafka.sent
    assert (topic, message["event_id"], message["final_error"]) == (
        settings.dlq_topic,
        event_id,
        "HTTP 500",
    )
    assert (await _row(db, event_id))["dlq_due_at"] is None
    later = NOW + timedelta(hours=1)
    await _scheduler(settings, db, later, kafka).republisher._republish_dead_letters(later)
    assert len(kafka.sent) == 1


async def test_a_failure_owing_its_dead_letter_copy_stays_in_the_hot_table(
    migrated: Settings, db: Database
) -> None:
    """The re-publisher reads owed copies from the hot table only: retention waits."""
    dying = Kafka(crash=True)

    async def publishing(_: str) -> bool:
        return dying.dying.is_set()

    event_id = await _failed_delivery(migrated, db, dying, publishing)
    windows = Windows(active=timedelta(hours=1), total=timedelta(hours=48))
    later = NOW + timedelta(hours=2)  # past the active window
    assert (await run_once(db, windows, later))["moved"] == 0
    await _scheduler(migrated, db, later, Kafka()).republisher._republish_dead_letters(later)
    assert (await run_once(db, windows, later))["moved"] == 1
    async with db.connection() as tx:
        moved = await tx.fetch_one("SELECT id FROM event_logs_archive WHERE id = %s", (event_id,))
    assert moved is not None


# ---- no dead-letter copy carries a secret (read back from the real Kafka) ---------------


@pytest.fixture
async def real_kafka(migrated: Settings) -> AsyncIterator[tuple[Settings, Publisher]]:
    """Settings with a job topic of this test's own (so its dead-letter topic holds only
    this test's copies), both topics created, and a publisher to them."""
    settings = replace(migrated, kafka_topic=f"eventtrigger.test.dlq.{new_id(NOW).lower()}")
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    try:
        yield settings, publisher
    finally:
        await publisher.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
        await admin.start()
        try:
            await admin.delete_topics([settings.kafka_topic, settings.dlq_topic])
        finally:
            await admin.close()


async def _read_dead_letters(settings: Settings, count: int) -> list[bytes]:
    """The first `count` raw messages on the dead-letter topic (waits up to 20 s)."""
    consumer = AIOKafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=list(settings.kafka_bootstrap),
        group_id=f"{settings.dlq_topic}.reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < count:
                batch = await consumer.getmany(timeout_ms=500)
                found += [r.value for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return found


ROTATING = {
    "signing_secret": new_signing_secret(),
    "previous_signing_secret": new_signing_secret(),
    "previous_secret_expires_at": "2026-03-02T12:00:00Z",  # a rotation's grace, still on
}


def _assert_no_secret(raw: bytes, event_id: str) -> None:
    message = orjson.loads(raw)
    assert (message["event_id"], message["final_error"]) == (event_id, "HTTP 500")
    assert not [k for k in message if "secret" in k]
    text = raw.decode()
    assert "whsec_" not in text
    for secret in ROTATING.values():
        assert secret not in text


async def test_the_workers_dead_letter_copy_on_kafka_carries_no_secret(
    real_kafka: tuple[Settings, Publisher], db: Database
) -> None:
    settings, publisher = real_kafka

    async def marked_sent(event_id: str) -> bool:
        return (await _row(db, event_id))["dlq_due_at"] is None

    event_id = await _failed_delivery(settings, db, publisher, marked_sent, ROTATING)
    assert await marked_sent(event_id)
    [raw] = await _read_dead_letters(settings, 1)
    _assert_no_secret(raw, event_id)


async def test_the_re_published_dead_letter_copy_on_kafka_carries_no_secret(
    real_kafka: tuple[Settings, Publisher], db: Database
) -> None:
    settings, publisher = real_kafka
    dying = Kafka(crash=True)

    async def publishing(_: str) -> bool:
        return dying.dying.is_set()

    event_id = await _failed_delivery(settings, db, dying, publishing, ROTATING)
    owed = read_time((await _row(db, event_id))["dlq_due_at"])
    assert owed is not None
    await _scheduler(settings, db, owed, publisher).republisher._republish_dead_letters(owed)
    assert (await _row(db, event_id))["dlq_due_at"] is None
    [raw] = await _read_dead_letters(settings, 1)
    _assert_no_secret(raw, event_id)
