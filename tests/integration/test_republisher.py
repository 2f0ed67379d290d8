"""The re-publisher against the real database and Kafka: a job queued behind consumer lag
is not re-sent (its row waits, noting where the partition ended), and is re-sent once the
workers' group has passed that point without finishing it (lost); a job owed a publish
(a retry, a parked job) goes out at once, lag or not; a due retry is not starved by
older first attempts; a re-publish is never counted again in the fire lateness; and the
loop beats on every turn."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from loguru import logger

from eventtrigger.bus import Publisher
from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings, load_settings
from eventtrigger.domain.jobs import NewEvent, event_dict, job_message
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.republisher import Republisher
from eventtrigger.store import deliveries
from eventtrigger.store.db import Database, read_time
from eventtrigger.store.events import insert_events
from tests import conftest

PARTITIONS = 2
REQUEST = {
    "url": "http://127.0.0.1:9/hook",
    "method": "POST",
    "headers": {},
    "timeout": "1s",
    "retry": {"max_attempts": 3, "initial_delay": "1s", "max_delay": "5s"},
    "signing_secret": "whsec_c2VjcmV0",
}


def _partition(event_id: str) -> int:
    """Where the producer's default partitioner puts a job keyed by this event id."""
    return int(murmur2(event_id.encode()) & 0x7FFFFFFF) % PARTITIONS


class Recording(Publisher):
    """Kafka for the re-publisher's own publishes: acknowledged and remembered."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        self.sent += messages
        return True


@dataclass
class Setup:
    settings: Settings
    republisher: Republisher
    sent: Recording
    clock: FrozenClock
    lines: list[dict[str, Any]]


@pytest.fixture
async def setup(migrated: Settings, db: Database) -> AsyncIterator[Setup]:
    suffix = secrets.token_hex(4)
    settings = load_settings(
        environ=conftest.test_environ(
            EVENTTRIGGER_KAFKA_TOPIC=f"republish.{suffix}",
            EVENTTRIGGER_KAFKA_GROUP=f"republish-{suffix}",
            EVENTTRIGGER_RECOVERY_AFTER="2s",
        ),
        env_file=None,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
    await admin.start()
    await admin.create_topics([NewTopic(settings.kafka_topic, PARTITIONS, 1)])
    metrics = Metrics()
    clock = FrozenClock(datetime.now(UTC))
    res = Resources(
        settings=settings, clock=clock, db=db, health=Health(("scheduler",), {}),
        metrics=metrics, stats=StatsKeeper(
            db, Windows(settings.retention_active, settings.retention_total), metrics
        ),
    )  # fmt: skip
    sent = Recording()
    lines: list[dict[str, Any]] = []
    sink = logger.add(lambda m: lines.append(m.record["extra"]), level="INFO")
    republisher = Republisher(res, sent)
    try:
        yield Setup(settings, republisher, sent, clock, lines)
    finally:
        logger.remove(sink)
        await republisher.lag.close()
        await admin.delete_topics([settings.kafka_topic])
        await admin.close()


async def _events(
    db: Database, n: int, deadline: datetime, source: str = "scheduled"
) -> list[NewEvent]:
    events = [
        NewEvent(
            id=new_id(deadline),
            trigger_id=None,
            trigger_type="interval_scheduled",
            source=source,
            scheduled_at=deadline - timedelta(seconds=2),
            fired_at=deadline - timedelta(seconds=2),
            payload={"n": i},
            request=REQUEST,
            next_attempt_at=deadline,
        )
        for i in range(n)
    ]
    async with db.transaction() as tx:
        await insert_events(tx, events, deadline)
    return events


async def _row(db: Database, event_id: str) -> dict[str, Any]:
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT * FROM event_logs WHERE id = %s", (event_id,))
    assert row is not None
    return row


def _actions(lines: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [x for x in lines if x.get("action") == action]


async def test_a_job_behind_consumer_lag_is_not_re_sent_and_a_lost_one_is(
    setup: Setup, db: Database
) -> None:
    s, clock = setup.settings, setup.clock
    now = clock.now()
    events = await _events(db, 4, now - timedelta(seconds=1))  # their deadline passed
    # Published as the scheduler does (the producer's partitioner), never consumed.
    publisher = Publisher(s)
    await publisher.start()
    try:
        assert await publisher.publish([job_message(event_dict(e)) for e in events])
    finally:
        await publisher.stop()
    # A retry due now is owed a publish, lag or not.
    [retry] = await _events(db, 1, now - timedelta(seconds=1))
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE event_logs SET status = 'retrying', attempts = 1, publish_due = TRUE"
            " WHERE id = %s",
            (retry.id,),
        )

    await setup.republisher._republish(now)

    assert [m["event_id"] for m in setup.sent.sent] == [retry.id]
    assert [x["count"] for x in _actions(setup.lines, "due_published")] == [1]
    assert _actions(setup.lines, "republished") == []
    ends: dict[int, int] = {}
    for e in events:
        p = _partition(e.id)
        ends[p] = ends.get(p, 0) + 1
    for e in events:  # waiting, with the end offset of their partition noted
        row = await _row(db, e.id)
        assert row["lag_mark"] == ends[_partition(e.id)]
        later = read_time(row["next_attempt_at"])
        assert later is not None and later > now

    # The group consumes and settles the partitions up to their end, yet the rows are
    # unfinished: those jobs were lost, and are re-sent when next due.
    group = AIOKafkaConsumer(
        bootstrap_servers=list(s.kafka_bootstrap), group_id=s.kafka_group,
        enable_auto_commit=False,
    )  # fmt: skip
    await group.start()
    try:
        group.assign([TopicPartition(s.kafka_topic, p) for p in range(PARTITIONS)])
        await group.commit({TopicPartition(s.kafka_topic, p): end for p, end in ends.items()})
    finally:
        await group.stop()
    async with db.transaction() as tx:  # the retry was delivered meanwhile
        await tx.execute(
            "UPDATE event_logs SET status = 'success', next_attempt_at = NULL WHERE id = %s",
            (retry.id,),
        )
    clock.advance(timedelta(seconds=2))
    setup.republisher.lag._read = None  # a fresh reading, not the cached one
    await setup.republisher._republish(clock.now())

    assert sorted(m["event_id"] for m in setup.sent.sent[1:]) == sorted(e.id for e in events)
    assert len(_actions(setup.lines, "republished")) == len(events)
    for e in events:
        row = await _row(db, e.id)
        assert row["lag_mark"] is None and not row["publish_due"]
    # Scheduled first attempts, re-published: the lateness was counted at their first
    # publish (the scheduler's), never again.
    registry = setup.republisher.res.metrics.registry
    assert not registry.get_sample_value("eventtrigger_fire_lateness_seconds_count")


async def test_a_due_retry_is_not_starved_by_older_first_attempts(
    setup: Setup, db: Database
) -> None:
    now = setup.clock.now()
    backlog = await _events(db, 6, now - timedelta(seconds=1), source="api")
    [retry] = await _events(db, 1, now - timedelta(seconds=1), source="api")
    async with db.transaction() as tx:  # due before the whole backlog
        await tx.execute(
            "UPDATE event_logs SET status = 'retrying', attempts = 1, publish_due = TRUE,"
            " next_attempt_at = %s WHERE id = %s",
            (now - timedelta(seconds=2), retry.id),
        )
    async with db.transaction() as tx:
        taken = await deliveries.take_due(tx, now, now + timedelta(seconds=2), 3)
    # In deadline order across both statuses, not every first attempt before any retry.
    [first, *rest] = [r["id"] for r in taken]
    assert first == retry.id
    assert len(rest) == 2 and set(rest) <= {e.id for e in backlog}


async def test_the_re_publisher_beats_on_every_turn_and_is_forgotten_when_it_stops(
    setup: Setup, db: Database
) -> None:
    ticks = [1000.0]
    health = Health(("scheduler",), {}, monotonic=lambda: ticks[0])
    republisher = setup.republisher
    republisher.res = replace(republisher.res, health=health)
    stop = asyncio.Event()

    async def loops() -> dict[str, float]:
        _, body = await health.report()
        return dict(body["roles"]["scheduler"]["loops"])

    task = asyncio.create_task(republisher.run(stop))
    try:
        for at in (1000.0, 1031.0):  # and again after more than stale_after
            ticks[0] = at
            deadline = asyncio.get_running_loop().time() + 10
            while (await loops()).get("republisher") != 0:
                assert asyncio.get_running_loop().time() < deadline, await loops()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert "republisher" not in await loops()  # ended on purpose: not stalled
