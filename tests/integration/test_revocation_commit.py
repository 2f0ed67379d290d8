"""Offsets a worker has settled are committed when its partitions are revoked: a second
worker joining the group starts each partition where the first one finished, so nothing
the first one processed is delivered again (no duplicate work, no `duplicate_skipped`).

The first worker's periodic commit never runs here, so only the revocation hook can have
committed what the newcomer finds."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventtrigger.bus import job_consumer
from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings, load_settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.worker import Worker, _Rebalance
from eventtrigger.store.db import Database
from tests import conftest

PARTITIONS = 2
PER_PARTITION = 10


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


async def test_revoked_partitions_commit_settled_offsets_so_a_newcomer_does_not_redeliver(
    migrated: Settings, db: Database
) -> None:
    suffix = secrets.token_hex(4)
    settings = load_settings(
        environ=conftest.test_environ(
            EVENTTRIGGER_KAFKA_TOPIC=f"revoke.{suffix}", EVENTTRIGGER_KAFKA_GROUP=f"revoke-{suffix}"
        ),
        env_file=None,
    )
    topic, group = settings.kafka_topic, settings.kafka_group
    admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=list(settings.kafka_bootstrap))
    await producer.start()
    metrics = Metrics()
    res = Resources(
        settings=settings, clock=SystemClock(), db=db, health=Health(("worker",), {}),
        metrics=metrics, stats=StatsKeeper(
            db, Windows(settings.retention_active, settings.retention_total), metrics
        ),
    )  # fmt: skip
    first = Worker(res, None)  # type: ignore[arg-type]  # publishes nothing here
    newcomer: AIOKafkaConsumer = job_consumer(settings)
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        for p in range(PARTITIONS):
            for i in range(PER_PARTITION):
                await producer.send_and_wait(topic, b"job %d" % i, partition=p)

        await first.consumer.start()
        first.consumer.subscribe([topic], listener=_Rebalance(first))
        seen: dict[TopicPartition, int] = {}

        async def first_settled_everything() -> bool:
            # The worker's bookkeeping for each job: taken in, then settled (stored).
            batch = await first.consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    first.offsets.add(tp, r.offset)
                    first.offsets.done(tp, r.offset)
                    seen[tp] = seen.get(tp, 0) + 1
            return sum(seen.values()) == PARTITIONS * PER_PARTITION

        await _until(first_settled_everything, 30, "the first worker to take every job")
        assert await _committed(admin, group, topic) == {}  # nothing committed so far

        # A second worker joins: the group rebalances, the first one's partitions are
        # revoked (and committed), then shared out again.
        await newcomer.start()
        newcomer.subscribe([topic])
        again: list[Any] = []

        async def both_assigned() -> bool:
            polls = await asyncio.gather(
                first.consumer.getmany(timeout_ms=200), newcomer.getmany(timeout_ms=200)
            )
            for tp, records in polls[0].items():  # the first worker keeps settling
                for r in records:
                    first.offsets.add(tp, r.offset)
                    first.offsets.done(tp, r.offset)
            again.extend(r for records in polls[1].values() for r in records)
            return bool(newcomer.assignment()) and bool(first.consumer.assignment())

        await _until(both_assigned, 30, "the rebalance to give the newcomer a partition")
        for _ in range(5):  # a few more fetches: nothing processed may come back
            batch = await newcomer.getmany(timeout_ms=200)
            again.extend(r for records in batch.values() for r in records)

        assert again == []  # the newcomer re-delivers none of the settled jobs
        committed = await _committed(admin, group, topic)
        assert committed == {p: PER_PARTITION for p in range(PARTITIONS)}
    finally:
        for consumer in (newcomer, first.consumer):
            await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()


async def _committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}
