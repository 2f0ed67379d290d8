"""The worker's per-host bookkeeping against the real database. A later attempt of an
event it holds (its lease lapsed and the row was re-published) replaces one still
queued, and a host's count of held jobs returns to zero once everything is settled,
whether the earlier attempt was queued or already in flight. A host holds only what it
can take soon and parks the rest on their rows, in order and without an attempt; hosts
are keyed by endpoint and forgotten when idle; a message that is no job is dead-lettered,
counted and settled. Nothing is delivered here: the stop event is set, so queued jobs
stay queued."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from loguru import logger

from eventtrigger.bus import Publisher
from eventtrigger.clock import FrozenClock, SystemClock
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent, event_dict, job_message, message_key
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles import worker as worker_module
from eventtrigger.roles.worker import Held, Host, Worker
from eventtrigger.store.db import Database, read_time
from eventtrigger.store.events import insert_events

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


# -- parking: a host holds only what it can take soon ------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REQUEST: dict[str, Any] = {
    "url": "http://Slow.Example:80/hook",
    "method": "POST",
    "headers": {},
    "timeout": "1s",
    "retry": {"max_attempts": 3, "initial_delay": "1s", "max_delay": "5s"},
    "signing_secret": "whsec_c2VjcmV0",
}
PARKING_TP = TopicPartition("parking", 0)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


class Recorded(Publisher):
    """Keeps what would go to Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, dict[str, Any]]] = []

    async def publish(self, messages: Sequence[dict[str, Any]], topic: str | None = None) -> bool:
        for m in messages:
            message_key(m)  # as the real one does: every message needs its key
        self.sent += [(topic, m) for m in messages]
        return True


@pytest.fixture
async def parking(migrated: Settings, db: Database) -> AsyncIterator[Worker]:
    """A worker of one slot per host whose deliveries are known to take 10 s; it holds
    and queues, never delivers (stop is set)."""
    metrics = Metrics()
    windows = Windows(migrated.retention_active, migrated.retention_total)
    settings = replace(migrated, worker_per_host=1)
    res = Resources(
        settings=settings, clock=FrozenClock(NOW), db=db, health=Health(("worker",), {}),
        metrics=metrics, stats=StatsKeeper(db, windows, metrics),
    )  # fmt: skip
    w = Worker(res, Recorded())
    w._stop.set()
    yield w
    await w.consumer.stop()


async def _events(
    db: Database, n: int, url: str = "http://Slow.Example:80/hook"
) -> list[dict[str, Any]]:
    events = [
        NewEvent(
            id=new_id(NOW),
            trigger_id=None,
            trigger_type="webhook",
            source="api",
            scheduled_at=NOW,
            fired_at=NOW,
            payload={"n": i},
            request={**REQUEST, "url": url},
            next_attempt_at=NOW + timedelta(seconds=5),
        )
        for i in range(n)
    ]
    async with db.transaction() as tx:
        await insert_events(tx, events, NOW)
    return [job_message(event_dict(e)) for e in events]


def _due(row: dict[str, Any]) -> datetime:
    at = read_time(row["next_attempt_at"])
    assert at is not None
    return at


def _records(jobs: list[dict[str, Any]], first_offset: int) -> list[Record]:
    return [
        Record(PARKING_TP.topic, 0, first_offset + n, orjson.dumps(job))
        for n, job in enumerate(jobs)
    ]


async def _rows(db: Database, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        rows = {
            r["id"]: r
            for r in await tx.fetch_all(
                "SELECT id, attempts, lease_owner, next_attempt_at, publish_due, parked"
                " FROM event_logs"
            )
        }
    return [rows[j["event_id"]] for j in jobs]


async def test_jobs_beyond_what_a_host_takes_soon_are_parked_in_order_without_an_attempt(
    parking: Worker, db: Database
) -> None:
    lines: list[dict[str, Any]] = []
    key = "http://slow.example:80"
    parking._hosts.setdefault(key, Host()).seconds = 10.0  # 1 slot, 10 s a delivery: 4 soon
    jobs = await _events(db, 10)
    sink = logger.add(lambda m: lines.append(m.record["extra"]), level="INFO")
    try:
        await parking._admit(_records(jobs, 0))
        host = parking._hosts[key]
        assert host.held == 4 and len(host.queue) == 4  # in memory: what it takes soon
        parking._flush_parked()  # what the lease loop does on each turn
    finally:
        logger.remove(sink)

    rows = await _rows(db, jobs)
    assert [r["lease_owner"] == parking.owner for r in rows] == [True] * 4 + [False] * 6
    parked = rows[4:]
    assert all(r["publish_due"] and r["parked"] and r["attempts"] == 0 for r in parked)
    due = [_due(r) for r in parked]
    # After the 4 it holds (40 s), one delivery time apart, in the order they came.
    assert due == [NOW + timedelta(seconds=50 + 10 * n) for n in range(6)]
    assert host.parked_until == due[-1]
    # The parked jobs' offsets are settled; the held ones stay open.
    assert parking.offsets._open[PARKING_TP] == {0, 1, 2, 3}
    [line] = [x for x in lines if x.get("action") == "parked"]  # one line for the batch
    assert (line["count"], line["host"]) == (6, key)

    # A new job while the line waits joins its end, even though the host has room now.
    parking._settle(host.queue.popleft())
    [late] = await _events(db, 1)
    await parking._admit(_records([late], 10))
    [row] = await _rows(db, [late])
    assert row["parked"]
    assert _due(row) == due[-1] + timedelta(seconds=10)

    # A parked job that comes back (re-published) goes ahead of the line into the room.
    await parking._admit(_records([jobs[4]], 11))
    assert jobs[4]["event_id"] in parking._held
    [row] = await _rows(db, [jobs[4]])
    assert row["lease_owner"] == parking.owner and not row["parked"]


async def test_hosts_are_keyed_by_endpoint_and_idle_ones_are_forgotten(
    parking: Worker, db: Database
) -> None:
    a = await _events(db, 1, "http://Example.COM/a")
    b = await _events(db, 1, "http://example.com:80/b")
    c = await _events(db, 1, "https://example.com/c")
    await parking._admit(_records([*a, *b, *c], 0))
    assert set(parking._hosts) == {"http://example.com:80", "https://example.com:443"}
    assert parking._hosts["http://example.com:80"].held == 2  # one host, one limit

    for item in list(parking._held.values()):
        parking._hosts[item.host].queue.remove(item)
        parking._settle(item)
    parking._prune(NOW)
    assert parking._hosts == {}


async def test_a_message_that_is_no_job_is_dead_lettered_counted_and_settled(
    parking: Worker, db: Database
) -> None:
    [good] = await _events(db, 1)
    bad = [
        b"http://[::1/x",  # not JSON at all
        orjson.dumps({**good, "request": {**good["request"], "url": "http://[::1/x"}}),
        orjson.dumps({k: v for k, v in good.items() if k != "fired_at"}),
        orjson.dumps({k: v for k, v in good.items() if k != "trigger_id"}),
    ]
    records = [Record(PARKING_TP.topic, 0, n, v) for n, v in enumerate(bad)]
    await parking._admit([*records, *_records([good], len(bad))])
    await asyncio.gather(*parking._rejects)

    publisher = parking.publisher
    assert isinstance(publisher, Recorded)
    reasons = [m["reason"] for topic, m in publisher.sent if topic == parking.settings.dlq_topic]
    assert reasons == ["not_json", "bad_url", "missing_field", "missing_field"]
    assert not any("whsec_" in orjson.dumps(m).decode() for _, m in publisher.sent)
    registry = parking.res.metrics.registry
    for reason, n in (("not_json", 1), ("bad_url", 1), ("missing_field", 2)):
        value = registry.get_sample_value("eventtrigger_jobs_rejected_total", {"reason": reason})
        assert value == n
    # Every bad offset is settled; only the good job (held) keeps its offset open.
    assert parking.offsets._open[PARKING_TP] == {len(bad)}
    assert good["event_id"] in parking._held


async def test_each_worker_loop_beats_under_its_own_name_even_when_idle(
    parking: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "BEAT_SECONDS", 0.05, raising=False)
    ticks = [1000.0]
    health = Health(("worker",), {}, monotonic=lambda: ticks[0])
    parking.res = replace(parking.res, health=health)
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(parking._lease_loop(stop)),
        asyncio.create_task(parking._commit_loop(stop)),
        asyncio.create_task(parking._outcome_loop()),
    ]

    async def loops_beaten_since(at: float) -> set[str]:
        _, body = await health.report()
        ages = body["roles"]["worker"]["loops"]
        return {name for name, age in ages.items() if ticks[0] - age >= at}

    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await loops_beaten_since(1000.0) != {"worker", "leases", "commits", "outcomes"}:
            assert asyncio.get_running_loop().time() < deadline, await health.report()
            await asyncio.sleep(0.02)
        # Nothing to do for 31 s (more than stale_after): each idle loop beat meanwhile.
        ticks[0] += 31
        health.beat("worker")  # the consume loop, not run here
        while await loops_beaten_since(1031.0) != {"worker", "leases", "commits", "outcomes"}:
            assert asyncio.get_running_loop().time() < deadline, await health.report()
            await asyncio.sleep(0.02)
        healthy, body = await health.report()
        assert healthy and body["roles"]["worker"]["stalled_loops"] == []
    finally:
        stop.set()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
