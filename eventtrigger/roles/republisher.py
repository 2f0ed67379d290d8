"""The re-publisher: publishes the jobs event rows say are owed, and only those.

It runs as a loop of the scheduler role, apart from claiming and firing, so a slow or
unreachable Kafka never delays a firing. An unfinished, unleased row whose deadline
(`next_attempt_at`) passed is one of two kinds:

- **Owed a publish** (`publish_due`): a retry whose backoff elapsed, or a job a worker
  parked for a slow host, now due. It is published at once and logged in one line per
  batch (action `due_published`); neither is a recovery.
- **A publish (or lease) deadline passed**: the job was published, or consumed and
  leased, and nobody has finished it. Either it was lost (the publish failed, the
  message vanished, its worker died and the partition's offset moved on), or it is
  merely queued behind consumer lag. Lag is not loss, and re-sending a queued job onto
  the partition that is already behind only adds to it. So the row's Kafka partition
  (the producer's own key hash) is looked up in the workers' group: if the group's
  committed offset there is at the partition's end, nothing is queued and the job was
  lost; otherwise the row is postponed and notes the partition's end offset then
  (`lag_mark`). Its message was published before its deadline, so before that offset:
  once the committed offset reaches the mark, the group has consumed (and settled)
  everything up to it, and a row still unfinished was lost. Only then is it
  re-published (action `republished`, one line per job: they are rare).

Why this design rather than a longer deadline: a job's fate is read from where it is
(the partition's committed offset), not guessed from time, so a lag of any length never
causes a re-send, and a job lost behind a lagging partition is re-sent as soon as the
group passes it, not after a fixed worst case. A worker that dies holding jobs leaves
its offsets uncommitted, so its partitions' next owner re-reads them without any re-send
either. If the group's offsets cannot be read (Kafka unreachable), rows are treated as
lost, as before: at least once.

Due rows of both statuses are read in one range in deadline order, so a due retry never
waits behind a backlog of first attempts. Fire lateness is observed once per event, by
the first publish (the scheduler's), never here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from loguru import logger

from eventtrigger.bus import Publisher, client_options
from eventtrigger.clock import wait_stop
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import dead_letter_message, job_message, message_key, scheduled_time
from eventtrigger.resources import Resources
from eventtrigger.store import deliveries
from eventtrigger.store.db import TRANSIENT_ERRORS, Row

POLL_SECONDS = 0.25
REPUBLISH_LIMIT = 500
LAG_FRESH = 0.5  # seconds a reading of the group's offsets is used for
LAG_TIMEOUT = 3.0  # seconds a reading may take before the rows are treated as lost
LAG_RECHECK_MIN = timedelta(milliseconds=500)  # rows behind lag wait at least this long


def observe_lateness(res: Resources, messages: list[dict[str, Any]]) -> float:
    """Scheduled time to this publish, once per published first attempt of a scheduled
    firing: called for the first publish only (the scheduler's), so a re-publish never
    counts an event twice. Retries are left out, their scheduled time is the firing's,
    and so are webhook calls and test runs, which have no schedule. The worst, in s."""
    published_at = res.clock.now()
    worst = 0.0
    for m in messages:
        if m["attempt"] != 1 or m["source"] != "scheduled":
            continue
        lateness = max(0.0, (published_at - scheduled_time(m)).total_seconds())
        res.metrics.observe_lateness(lateness)
        worst = max(worst, lateness)
    return worst


@dataclass(frozen=True)
class Lag:
    """The workers' group on the job topic: per partition, the committed offset and the
    end offset (a partition without a commit counts as committed at 0)."""

    partitions: int
    committed: dict[int, int]
    end: dict[int, int]


def partition_of(row: Row, partitions: int) -> int:
    """The partition the producer's default partitioner sends this row's job to."""
    key = message_key({"trigger_id": row["trigger_id"], "event_id": row["id"]})
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Triage:
    owed: list[Row]  # publish_due: owed a publish now
    lost: list[Row]  # a deadline passed and the group is past the job
    waiting: dict[int, list[Row]]  # by partition: queued behind lag, to look at later
    unread: list[Row]  # a deadline passed, and no reading of the lag was asked for


def triage(rows: list[Row], lag: Lag | None, read: bool = True) -> Triage:
    """Sort due rows by what they need (pure). `read`: whether the lag was read; if it
    was and could not be (`lag` None), a row whose deadline passed counts as lost (at
    least once)."""
    result = Triage([], [], defaultdict(list), [])
    for row in rows:
        if row["publish_due"]:
            result.owed.append(row)
            continue
        if not read:
            result.unread.append(row)
            continue
        if lag is None or lag.partitions <= 0:
            result.lost.append(row)
            continue
        p = partition_of(row, lag.partitions)
        committed, end = lag.committed.get(p, 0), lag.end.get(p, 0)
        mark = row["lag_mark"]
        if committed >= (end if mark is None else min(int(mark), end)):
            result.lost.append(row)
        else:
            result.waiting[p].append(row)
    return result


class LagReader:
    """Reads the workers' group offsets and the job topic's end offsets, at most every
    LAG_FRESH seconds, on long-lived clients (dropped after a failure)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._read: tuple[float, Lag | None] | None = None

    async def lag(self) -> Lag | None:
        if self._read is not None and time.monotonic() - self._read[0] < LAG_FRESH:
            return self._read[1]
        try:
            async with asyncio.timeout(LAG_TIMEOUT):
                lag: Lag | None = await self._fetch()
        except (KafkaError, OSError, TimeoutError) as exc:
            logger.bind(role="scheduler", action="lag_unknown").warning(
                "consumer lag unreadable, overdue jobs count as lost: {!r}", exc
            )
            await self.close()
            lag = None
        self._read = (time.monotonic(), lag)
        return lag

    async def _fetch(self) -> Lag | None:
        s = self._settings
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(**client_options(s), request_timeout_ms=2000)
            await self._admin.start()
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                **client_options(s), enable_auto_commit=False,
                request_timeout_ms=2000, metadata_max_age_ms=5000,
            )  # fmt: skip
            await self._consumer.start()
        [topic] = await self._admin.describe_topics([s.kafka_topic])
        ids = [p["partition"] for p in topic.get("partitions") or []]
        if topic.get("error_code") or not ids:
            return None
        tps = [TopicPartition(s.kafka_topic, p) for p in sorted(ids)]
        ends = await self._consumer.end_offsets(tps)
        offsets = await self._admin.list_consumer_group_offsets(s.kafka_group, partitions=tps)
        committed = {
            tp.partition: int(meta.offset)
            for tp, meta in offsets.items()
            if meta is not None and meta.offset >= 0
        }
        return Lag(len(tps), committed, {tp.partition: int(o) for tp, o in ends.items()})

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        consumer, self._consumer = self._consumer, None
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if consumer is not None:
                await consumer.stop()


class Republisher:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.log = logger.bind(role="scheduler")
        self.lag = LagReader(res.settings)
        self._want_lag = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while True:
                # Every turn: one stuck on a locked row (or a hung Kafka) shows as stalled.
                self.res.health.beat("scheduler", "republisher")
                try:
                    await self._republish(self.res.clock.now())
                    await self._republish_dead_letters(self.res.clock.now())
                except TRANSIENT_ERRORS as exc:
                    self.log.bind(action="db_error").warning("re-publish failed: {}", exc)
                if await wait_stop(stop, POLL_SECONDS):
                    return
        finally:
            self.res.health.forget("scheduler", "republisher")
            await self.lag.close()

    async def _republish(self, now: datetime) -> None:
        # The lag is read before the rows are locked, never under row locks: read at once
        # when the last turn met rows that need it, else read when this turn meets some
        # (their transaction ends untouched, and a second one takes them).
        lag = await self.lag.lag() if self._want_lag else None
        plan = await self._take_due(now, lag, self._want_lag)
        if plan is None:
            plan = await self._take_due(now, await self.lag.lag(), True)
        assert plan is not None
        self._want_lag = bool(plan.waiting) or bool(plan.lost)
        sending = plan.owed + plan.lost
        if not sending:
            return
        messages = [job_message(r) for r in sending]
        if not await self.publisher.publish(messages):
            async with self.res.db.transaction() as tx:
                await deliveries.publish_failed(tx, [r["id"] for r in sending])
            return
        if plan.owed:
            parked = sum(1 for r in plan.owed if r["parked"])
            self.log.bind(
                action="due_published", count=len(plan.owed), parked=parked,
                retries=len(plan.owed) - parked,
            ).info("published {} due job(s)", len(plan.owed))  # fmt: skip
        for m in messages[len(plan.owed) :]:
            self.log.bind(
                action="republished", trigger_id=m["trigger_id"], event_id=m["event_id"],
                attempt=m["attempt"],
            ).info("republished")  # fmt: skip

    async def _take_due(self, now: datetime, lag: Lag | None, read: bool) -> Triage | None:
        """Lock the due rows, mark what is being published, postpone what waits behind lag;
        None (and nothing changed) if some need a reading of the lag that `read` lacks."""
        recovery = self.res.settings.recovery_after
        async with self.res.db.transaction() as tx:
            rows = await deliveries.select_due(tx, now, REPUBLISH_LIMIT)
            plan = triage(rows, lag, read)
            if plan.unread:
                return None
            sending = plan.owed + plan.lost
            await deliveries.set_deadline(tx, [r["id"] for r in sending], now + recovery)
            # Looked at again soon: a job lost behind a partition whose worker died (or
            # never published by a process that died) is re-sent once the partition's
            # next owner has read past it, so every second of waiting here is a second
            # of lateness after a crash; each look is one indexed read.
            later = now + max(recovery / 5, LAG_RECHECK_MIN)
            for p, waiting in plan.waiting.items():
                mark = lag.end.get(p, 0) if lag is not None else 0
                await deliveries.postpone(tx, [r["id"] for r in waiting], later, mark)
        return plan

    async def _republish_dead_letters(self, now: datetime) -> None:
        """Dead-letter copies still owed once due: the worker that stored the failure died
        (or could not publish) before Kafka had them."""
        async with self.res.db.transaction() as tx:
            rows = await deliveries.take_dead_letters(
                tx, now, now + self.res.settings.recovery_after, REPUBLISH_LIMIT
            )
        messages = [dead_letter_message(r) for r in rows]
        if not messages or not await self.publisher.publish(messages, self.res.settings.dlq_topic):
            return  # due again later
        async with self.res.db.transaction() as tx:
            await deliveries.dead_letters_sent(tx, [m["event_id"] for m in messages])
        for m in messages:
            self.log.bind(
                action="dead_letter_republished", trigger_id=m["trigger_id"],
                event_id=m["event_id"], attempt=m["attempt"],
            ).info("dead-letter copy re-published")  # fmt: skip
