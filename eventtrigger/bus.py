"""Kafka: connection settings, the health check, and (with the firing pipeline) topics,
the producer and the consumer."""

from __future__ import annotations

import time

from aiokafka.admin import AIOKafkaAdminClient

from eventtrigger.config import Settings


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
