"""The worker's per-host bookkeeping when a later attempt of an event it holds arrives
(its lease lapsed and the row was re-published): the later attempt replaces one still
queued, and a host's count of held jobs returns to zero once everything is settled,
whether the earlier attempt was queued or already in flight. Nothing is delivered here:
the stop event is set, so queued jobs stay queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import TopicPartition

from eventtrigger.clock import SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles.worker import Held, Worker
from eventtrigger.store.db import Database

TP = TopicPartition("jobs", 0)
HOST = "127.0.0.1:9"


def _job(attempt: int) -> dict[str, Any]:
    return {"event_id": "01M8SBBWCN51RA1Z4Q0M45AAAA", "attempt": attempt}


@pytest.fixture
async def worker(migrated: Settings, db: Database) -> AsyncIterator[Worker]:
    metrics = Metrics()
    windows = Windows(migrated.retention_active, migrated.retention_total)
    res = Resources(
        settings=migrated, clock=SystemClock(), db=db, health=Health(("worker",), {}),
        metrics=metrics, stats=StatsKeeper(db, windows, metrics),
    )  # fmt: skip
    w = Worker(res, None)  # type: ignore[arg-type]  # publishes nothing here
    w._stop.set()  # hold and queue, never deliver
    yield w
    await w.consumer.stop()  # never started; stopping it keeps aiokafka from warning


def _taken(w: Worker, *offsets: int) -> list[Held]:
    for offset in offsets:
        w.offsets.add(TP, offset)
    return [Held(TP, offset, _job(n + 1), HOST) for n, offset in enumerate(offsets)]


async def test_a_later_attempt_replaces_a_queued_one_and_settles_its_offset(
    worker: Worker,
) -> None:
    earlier, later = _taken(worker, 10, 11)
    worker._hold(earlier)
    worker._hold(later)

    host = worker._hosts[HOST]
    assert list(host.queue) == [later]  # the earlier attempt will not be sent
    assert host.held == 1

    worker._settle(later)
    assert host.held == 0
    assert worker.offsets.committable() == {TP: 12}  # both offsets settled


async def test_an_attempt_in_flight_when_a_later_one_arrives_leaves_no_count_behind(
    worker: Worker,
) -> None:
    earlier, later = _taken(worker, 20, 21)
    worker._hold(earlier)
    worker._hosts[HOST].queue.popleft().started = True  # as _dispatch does
    worker._hold(later)
    host = worker._hosts[HOST]
    assert host.held == 2  # both take a place until each is settled

    worker._settle(earlier)
    worker._settle(later)

    assert host.held == 0
    assert worker._held == {}
    assert worker.offsets.committable() == {TP: 22}
