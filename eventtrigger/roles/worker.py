"""The worker role: consume jobs, deliver them, store outcomes, then commit offsets.

Jobs are consumed continuously while deliveries run, so one slow endpoint holds only its
own slots (a per-host limit inside a global one), never the consumer. An offset is
committed only once every job at or below it has its outcome stored; a crash therefore
re-delivers (at-least-once), and the attempt-number guard on the event row keeps the log
to exactly one outcome per attempt. Retries are rows with a `next_attempt_at`, re-published
by the scheduler, so a failing endpoint never holds a slot while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from loguru import logger

from eventtrigger.bus import Publisher, job_consumer
from eventtrigger.delivery import Deliverer, Result
from eventtrigger.domain import retry
from eventtrigger.domain.durations import parse_duration
from eventtrigger.domain.jobs import scheduled_time
from eventtrigger.resources import Resources
from eventtrigger.store.db import TRANSIENT_ERRORS
from eventtrigger.store.events import Attempt, claim_for_delivery, record_attempt

COMMIT_SECONDS = 0.5
MAX_IN_FLIGHT = 4096  # jobs admitted but not finished; bounds memory under a backlog


class Offsets:
    """Per partition: which offsets are still in flight, to commit only what is done."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, set[int]] = defaultdict(set)
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._open[tp].add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        self._open[tp].discard(offset)

    def committable(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """For each partition, the offset to commit: the lowest still open, else the next."""
        out = {}
        for tp, nxt in self._next.items():
            if only is None or tp in only:
                out[tp] = min(self._open[tp]) if self._open[tp] else nxt
        return out

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.commit(set(revoked))
        self.worker.offsets.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


class Worker:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.settings = res.settings
        self.deliverer = Deliverer(res.settings.egress_allow)
        self.consumer = job_consumer(res.settings)
        self.offsets = Offsets()
        self.log = logger.bind(role="worker")
        self._slots = asyncio.Semaphore(res.settings.worker_concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(res.settings.worker_per_host)
        )
        self._admitted = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[str] = set()  # event ids being delivered by this process
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.deliverer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.settings.kafka_topic], listener=_Rebalance(self))
        committer = asyncio.create_task(self._commit_loop(stop))
        self.log.bind(action="role_started").info("worker started")
        try:
            while not stop.is_set():
                self.res.health.beat("worker")
                batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
                records = [r for rs in batch.values() for r in rs]
                if records:
                    await self._admit(records)
        finally:
            await self._drain()
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            await self.commit(None)
            await self.consumer.stop()
            await self.deliverer.stop()

    async def _admit(self, records: list[Any]) -> None:
        """Decode a batch, claim what is still to do in one query, start its deliveries."""
        jobs: dict[str, tuple[Any, dict[str, Any]]] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.offsets.add(tp, record.offset)
            try:
                job = orjson.loads(record.value)
                event_id = str(job["event_id"])
                int(job["attempt"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.log.bind(action="bad_message", offset=record.offset).error("unreadable job")
                self.offsets.done(tp, record.offset)
                continue
            if event_id in self._in_flight or event_id in jobs:
                self._skip(tp, record.offset, job)
                continue
            jobs[event_id] = (record, job)
        if not jobs:
            return
        now = self.res.clock.now()
        longest = max(parse_duration(j["timeout"]) for _, j in jobs.values())
        deadline = now + longest + self.settings.recovery_after
        todo = await self._with_retries(
            self._claim, {k: int(j["attempt"]) for k, (_, j) in jobs.items()}, deadline
        )
        for event_id, (record, job) in jobs.items():
            tp = TopicPartition(record.topic, record.partition)
            if event_id not in todo:
                self._skip(tp, record.offset, job)
                continue
            await self._admitted.acquire()
            self._in_flight.add(event_id)
            task = asyncio.create_task(self._deliver(tp, record.offset, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self, attempts: dict[str, int], deadline: datetime) -> set[str]:
        async with self.res.db.transaction() as tx:
            return await claim_for_delivery(tx, attempts, deadline)

    def _skip(self, tp: TopicPartition, offset: int, job: dict[str, Any]) -> None:
        self.log.bind(
            action="duplicate_skipped",
            trigger_id=job.get("trigger_id"),
            event_id=job.get("event_id"),
            attempt=job.get("attempt"),
        ).info("job already done or in progress")
        self.offsets.done(tp, offset)

    async def _deliver(self, tp: TopicPartition, offset: int, job: dict[str, Any]) -> None:
        event_id = job["event_id"]
        attempt = int(job["attempt"])
        try:
            host = urlsplit(job["request"]["url"]).netloc
            async with self._hosts[host], self._slots:
                self.res.metrics.jobs_processing.inc()
                try:
                    result = await self.deliverer.send(job, self.res.clock.now())
                finally:
                    self.res.metrics.jobs_processing.dec()
            await self._finish(job, attempt, result)
        finally:
            self._in_flight.discard(event_id)
            self.offsets.done(tp, offset)
            self._admitted.release()

    async def _finish(self, job: dict[str, Any], attempt: int, result: Result) -> None:
        now = self.res.clock.now()
        policy = job["retry"]
        if result.permanent:
            outcome = retry.Outcome("failure", None)
        else:
            outcome = retry.decide(
                attempt=attempt,
                max_attempts=int(policy["max_attempts"]),
                status_code=result.status_code,
                retry_after=retry.parse_retry_after(result.retry_after, now),
                initial_delay=parse_duration(policy["initial_delay"]),
                max_delay=parse_duration(policy["max_delay"]),
                now=now,
                jitter_draw=random.random(),
            )
        record = Attempt(
            event_id=job["event_id"],
            attempt=attempt,
            status=outcome.status,
            status_code=result.status_code,
            error=result.error,
            delivered_at=now if outcome.status == "success" else None,
            next_attempt_at=outcome.next_attempt_at,
        )
        stored = await self._with_retries(self._store, record, now)
        metrics = self.res.metrics
        metrics.delivery_attempts.labels(outcome.status).inc()
        log = self.log.bind(
            trigger_id=job["trigger_id"],
            event_id=job["event_id"],
            attempt=attempt,
            status_code=result.status_code,
        )
        if not stored:
            log.bind(action="duplicate_skipped").info("attempt already recorded")
            return
        if outcome.status == "retrying":
            log.bind(
                action="retry_scheduled",
                next_attempt_at=str(outcome.next_attempt_at),
                error=result.error,
            ).info("retry scheduled")
            return
        metrics.jobs_processed.labels(outcome.status).inc()
        metrics.observe_delivery(max(0.0, (now - scheduled_time(job)).total_seconds()))
        if outcome.status == "success":
            log.bind(action="delivered").info("delivered")
        else:
            log.bind(action="failed", error=result.error).warning("delivery failed for good")
            dead = {**job, "final_error": result.error, "final_status_code": result.status_code}
            await self.publisher.publish([dead], self.settings.dlq_topic)

    async def _store(self, record: Attempt, now: datetime) -> bool:
        async with self.res.db.connection() as tx:
            return await record_attempt(tx, record, now)

    async def _with_retries(self, fn: Any, *args: Any) -> Any:
        """Database writes the outcome depends on: retry through a short outage."""
        delay = 0.1
        while True:
            try:
                return await fn(*args)
            except TRANSIENT_ERRORS as exc:
                self.log.bind(action="db_error").warning("retrying after: {}", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def commit(self, partitions: set[TopicPartition] | None) -> None:
        offsets = self.offsets.committable(partitions)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            self.log.bind(action="commit_failed").warning("offset commit failed: {!r}", exc)

    async def _commit_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), COMMIT_SECONDS)
            await self.commit(None)

    async def _drain(self) -> None:
        """Stop: let in-flight deliveries finish within the grace period."""
        if self._tasks:
            grace = self.settings.shutdown_grace.total_seconds()
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                self.log.bind(action="drain_timeout").warning(
                    "{} delivery(ies) cut at shutdown; they will be re-delivered", len(pending)
                )


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Worker(res, res.jobs).run(stop)
