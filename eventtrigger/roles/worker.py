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
HOST_QUEUE_FACTOR = 4  # a host may have this many rounds of its slots admitted


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
        self._queued: dict[str, int] = defaultdict(int)  # per host: admitted, not finished
        self._in_flight: set[str] = set()  # event ids being delivered by this process
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.deliverer.start()
        await self.consumer.start()
        await self._await_topic(stop)
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

    async def _await_topic(self, stop: asyncio.Event, seconds: float = 30.0) -> None:
        """Wait until the consumer's metadata knows the job topic's partitions.

        A topic created moments ago may not be in the metadata yet; joining the group then
        assigns this worker no partitions, and nothing would be consumed until the next
        metadata refresh.
        """
        topic = self.settings.kafka_topic
        deadline = asyncio.get_running_loop().time() + seconds
        client = self.consumer._client  # aiokafka has no public way to refresh it
        while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
            await client.force_metadata_update()
            if self.consumer.partitions_for_topic(topic):
                return
            self.res.health.beat("worker")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        self.log.bind(action="topic_missing").warning("no partitions for {} yet", topic)

    async def _admit(self, records: list[Any]) -> None:
        """Decode a batch, claim what is still to do in one query, start its deliveries."""
        jobs: dict[str, tuple[Any, dict[str, Any]]] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.offsets.add(tp, record.offset)
            job = _decode(record.value)
            if job is None:
                self.log.bind(action="bad_message", offset=record.offset).error("unreadable job")
                self.offsets.done(tp, record.offset)
                continue
            event_id = job["event_id"]
            earlier = jobs.get(event_id)
            if event_id in self._in_flight or (earlier and earlier[1]["attempt"] >= job["attempt"]):
                self._skip(tp, record.offset, job)
                continue
            if earlier is not None:  # a newer attempt of the same event in the same batch
                self._skip(TopicPartition(earlier[0].topic, earlier[0].partition),
                           earlier[0].offset, earlier[1])  # fmt: skip
            jobs[event_id] = (record, job)
        jobs = self._shed(jobs)
        if not jobs:
            return
        now = self.res.clock.now()
        # A job may wait behind HOST_QUEUE_FACTOR rounds of its host's slots before it runs.
        longest = max(parse_duration(j["timeout"]) for _, j in jobs.values())
        deadline = now + longest * HOST_QUEUE_FACTOR + self.settings.recovery_after
        todo = await self._with_retries(
            self._claim, {k: int(j["attempt"]) for k, (_, j) in jobs.items()}, deadline
        )
        for event_id, (record, job) in jobs.items():
            tp = TopicPartition(record.topic, record.partition)
            if event_id not in todo:
                self._skip(tp, record.offset, job)
                continue
            self._in_flight.add(event_id)
            self._queued[_host(job)] += 1
            task = asyncio.create_task(self._deliver(tp, record.offset, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _shed(
        self, jobs: dict[str, tuple[Any, dict[str, Any]]]
    ) -> dict[str, tuple[Any, dict[str, Any]]]:
        """Leave jobs this process cannot start soon to the re-publisher, unclaimed.

        The consume loop never waits for a slot: a host whose queue is full (or a process
        at its in-flight cap) gets no more jobs here, so one slow endpoint cannot stall
        consumption for every other endpoint. The skipped events keep their deadline
        and are re-published when it passes, to whichever worker has room.
        """
        kept: dict[str, tuple[Any, dict[str, Any]]] = {}
        planned: dict[str, int] = defaultdict(int)
        host_cap = self.settings.worker_per_host * HOST_QUEUE_FACTOR
        for event_id, (record, job) in jobs.items():
            host = _host(job)
            room = self._queued[host] + planned[host] < host_cap
            if room and len(self._in_flight) + len(kept) < MAX_IN_FLIGHT:
                kept[event_id] = (record, job)
                planned[host] += 1
                continue
            self.log.bind(
                action="deferred", trigger_id=job["trigger_id"], event_id=event_id,
                attempt=job["attempt"],
            ).info("host queue full; left for re-publishing")  # fmt: skip
            self.offsets.done(TopicPartition(record.topic, record.partition), record.offset)
        return kept

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
        host = _host(job)
        try:
            async with self._hosts[host], self._slots:
                self.res.metrics.jobs_processing.inc()
                try:
                    result = await self.deliverer.send(job, self.res.clock.now())
                except Exception as exc:  # a bug must not leave the event re-sent forever
                    self.log.bind(action="delivery_error", event_id=event_id).exception(
                        "delivery raised"
                    )
                    result = Result(None, f"internal error: {type(exc).__name__}", None, True)
                finally:
                    self.res.metrics.jobs_processing.dec()
            await self._finish(job, attempt, result)
        finally:
            self._in_flight.discard(event_id)
            self._queued[host] -= 1
            self.offsets.done(tp, offset)

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


def _host(job: dict[str, Any]) -> str:
    return str(urlsplit(job["request"]["url"]).netloc)


def _decode(value: bytes | None) -> dict[str, Any] | None:
    """A job message, checked for every field the worker relies on; None if unusable."""
    try:
        job = orjson.loads(value or b"")
        request, retry_policy = job["request"], job["retry"]
        checks = (
            isinstance(job["event_id"], str),
            isinstance(job["attempt"], int) and job["attempt"] >= 1,
            isinstance(request["url"], str) and isinstance(request["method"], str),
            isinstance(request["headers"], dict),
            isinstance(job["signing_secret"], str),
            isinstance(retry_policy["max_attempts"], int),
        )
        parse_duration(job["timeout"])
        parse_duration(retry_policy["initial_delay"])
        parse_duration(retry_policy["max_delay"])
        scheduled_time(job)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return job if all(checks) and isinstance(job, dict) else None


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Worker(res, res.jobs).run(stop)
