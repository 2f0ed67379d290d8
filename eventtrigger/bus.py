"""Kafka: topics, the job publisher, the workers' consumer, and the health check.

Kafka is the transport, not the truth: every job exists as an event row before it is
published, so a failed publish only delays it until the scheduler re-publishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from loguru import logger

from eventtrigger import __version__
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import message_key

PUBLISH_TIMEOUT = 10.0


async def kafka_ping(settings: Settings) -> float:
    """A metadata round trip to the cluster on a fresh connection; latency in ms."""
    started = time.perf_counter()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=list(settings.kafka_bootstrap),
        request_timeout_ms=2000,
        client_id="eventtrigger-health",
    )
    try:
        await admin.start()
        await admin.describe_cluster()
    finally:
        await admin.close()
    return (time.perf_counter() - started) * 1000


async def ensure_topics(settings: Settings) -> None:
    """Create the job and dead-letter topics if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=list(settings.kafka_bootstrap))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.kafka_partitions, settings.kafka_replication)
            for name in (settings.kafka_topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(wanted)
            logger.bind(action="topics_created").info("created topics {}", [t.name for t in wanted])
    finally:
        await admin.close()


class Publisher:
    """One idempotent producer per process (acks=all), shared by every role."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=list(settings.kafka_bootstrap),
            client_id=f"eventtrigger-{__version__}",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(PUBLISH_TIMEOUT * 1000),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        """Send a batch and wait for every ack; False (logged) if any failed.

        A failure is not fatal: the events keep their deadline and are re-published.
        """
        if not messages:
            return True
        topic = topic or self._settings.kafka_topic

        async def one(message: dict[str, Any]) -> None:
            sent = await self._producer.send(topic, orjson.dumps(message), key=message_key(message))
            await sent

        # Each message on its own: one that fails (too large, say) must not hold back the
        # rest of the batch.
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                results = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        except TimeoutError as exc:
            results = [exc]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            logger.bind(action="publish_failed", topic=topic).warning(
                "could not publish {} of {} job(s): {!r}; they will be re-published",
                len(failures), len(messages), failures[0],
            )  # fmt: skip
            return False
        return True


def job_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The workers' group consumer: offsets are committed by hand, after outcomes are stored."""
    return AIOKafkaConsumer(
        bootstrap_servers=list(settings.kafka_bootstrap),
        group_id=settings.kafka_group,
        client_id=f"eventtrigger-worker-{__version__}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        # Notice new topics and partitions within seconds (the default is 5 minutes).
        metadata_max_age_ms=5000,
    )
