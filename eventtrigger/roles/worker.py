"""The worker role: consume jobs, lease them, deliver them host by host, store outcomes in
batches, then commit offsets.

Backpressure stays in this process and never goes through recovery (ARCHITECTURE,
invariant 9): a job is leased when it is consumed and waits in its host's in-memory queue
until the host has a free slot (a per-host limit inside a global one), so one slow
endpoint holds only its own slots and queue, never the consumer. The queues are bounded:
past the process-wide cap the consumer pauses its partitions until they drain, and a
host whose own queue is full hands further jobs back with a short delay estimated from
its backlog, so it cannot take the whole buffer from the other hosts.

An offset is committed only past jobs whose outcome is stored, or whose row makes sure
the job is sent again (handed back, or leased by another live worker); a crash therefore
re-delivers (at least once), and the attempt number on the event row keeps the log to
one outcome per attempt. Retries are rows with a `next_attempt_at`, re-published by the
scheduler, so a failing endpoint never holds a slot while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from loguru import logger

from eventtrigger.bus import Publisher, job_consumer
from eventtrigger.clock import wait_stop
from eventtrigger.delivery import Deliverer, Result
from eventtrigger.domain import retry
from eventtrigger.domain.durations import parse_duration
from eventtrigger.domain.jobs import scheduled_time
from eventtrigger.domain.triggers import parse_iso
from eventtrigger.resources import Resources
from eventtrigger.store import autopause, deliveries
from eventtrigger.store.db import TRANSIENT_ERRORS, retry_conflicts
from eventtrigger.store.deliveries import Attempt

COMMIT_SECONDS = 0.5
HOST_QUEUE_ROUNDS = 256  # a host may hold this many rounds of its slots in memory
MAX_HELD = 16384  # jobs held (queued or in flight) per process; past it, consumption pauses
RESUME_AT = 0.75  # ... and resumes once the held jobs fall below this share of the cap
OUTCOME_BATCH = 500
# While deliveries are in flight, outcomes wait up to this long to be stored together.
# In a burst every core is busy; storing (SQL escaping, log lines, metrics) is work the
# endpoints do not wait for, so it goes after the sends instead of between them (S1b: a
# fifth of the worker's burst time), and later outcomes join the same transaction.
# Leases (recovery_after, 5 s) and offset commits easily absorb the wait.
OUTCOME_LINGER = 0.3
HAND_BACK_SECONDS = 2.0  # at shutdown, for releasing leases (the database may be gone)
REQUEUE_MIN, REQUEUE_MAX = 0.05, 60.0  # seconds a handed-back job waits
T = TypeVar("T")


class Stopping(Exception):
    """The stop event was set while a database write was waiting for the database."""


class Offsets:
    """Per partition: which offsets are still open, to commit only what is settled."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def add(self, tp: TopicPartition, offset: int) -> None:
        self._open.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._open:  # a revoked partition is forgotten: nothing to commit there
            self._open[tp].discard(offset)

    def committable(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """For each partition, the offset to commit: the lowest still open, else the next."""
        return {
            tp: min(self._open[tp]) if self._open[tp] else nxt
            for tp, nxt in self._next.items()
            if only is None or tp in only
        }

    def forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._open.pop(tp, None)
            self._next.pop(tp, None)


@dataclass
class Held:
    """A leased job in this process: queued for its host, then in flight."""

    tp: TopicPartition
    offset: int
    job: dict[str, Any]
    host: str
    # Offsets of copies of the same job that arrived while we held it: settled with it.
    twins: list[tuple[TopicPartition, int]] = field(default_factory=list)
    started: bool = False
    counted: bool = False  # in its host's `held` count until settled

    @property
    def event_id(self) -> str:
        return str(self.job["event_id"])

    @property
    def attempt(self) -> int:
        return int(self.job["attempt"])


@dataclass
class Host:
    queue: deque[Held] = field(default_factory=deque)
    active: int = 0
    held: int = 0  # queued + in flight + outcome not yet stored
    seconds: float = 0.1  # moving average of a delivery's duration


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Commit what is settled before another worker takes these partitions over; jobs
        # of theirs we still hold stay leased to us and are finished here.
        await self.worker.commit(set(revoked))
        self.worker.offsets.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


class Worker:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.settings = res.settings
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.deliverer = Deliverer(res.settings.egress_allow)
        self.consumer = job_consumer(res.settings)
        self.offsets = Offsets()
        self.log = logger.bind(role="worker")
        self.host_cap = res.settings.worker_per_host * HOST_QUEUE_ROUNDS
        self.lease = res.settings.recovery_after
        self._held: dict[str, Held] = {}  # by event id
        self._hosts: dict[str, Host] = defaultdict(Host)
        self._waiting: OrderedDict[str, None] = OrderedDict()  # hosts with queued jobs
        self._active = 0
        self._paused = False
        self._outcomes: asyncio.Queue[tuple[Held, Attempt, Result]] = asyncio.Queue()
        self._idle = asyncio.Event()  # no delivery in flight: outcomes need not linger
        self._idle.set()
        self._unstored = 0  # outcomes made, not yet stored
        self._all_stored = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()

    # -- the consume loop ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await self.deliverer.start()
        await self.consumer.start()
        await self._await_topic(stop)
        self.consumer.subscribe([self.settings.kafka_topic], listener=_Rebalance(self))
        helpers = [
            asyncio.create_task(self._commit_loop(stop), name="worker-commits"),
            asyncio.create_task(self._lease_loop(stop), name="worker-leases"),
            asyncio.create_task(self._outcome_loop(), name="worker-outcomes"),
        ]
        self.log.bind(action="role_started").info("worker {} started", self.owner)
        try:
            while not stop.is_set():
                self.res.health.beat("worker")
                for helper in helpers:
                    if helper.done():
                        helper.result()  # a crashed helper takes the role down, loudly
                self._pace()
                batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
                records = [r for rs in batch.values() for r in rs]
                if records:
                    with contextlib.suppress(Stopping):
                        await self._admit(records)
        finally:
            await self._shutdown(helpers)

    def _pace(self) -> None:
        """Pause every partition while the process holds its cap of jobs; resume below."""
        held = len(self._held)
        if not self._paused and held >= MAX_HELD:
            self.consumer.pause(*self.consumer.assignment())
            self._paused = True
            self.log.bind(action="paused", held=held).info("holding {} jobs; intake paused", held)
        elif self._paused and held < MAX_HELD * RESUME_AT:
            self.consumer.resume(*self.consumer.assignment())
            self._paused = False
            self.log.bind(action="resumed", held=held).info("intake resumed")
        elif self._paused:
            # Partitions assigned since the pause arrive unpaused.
            self.consumer.pause(*self.consumer.assignment())

    async def _await_topic(self, stop: asyncio.Event, seconds: float = 30.0) -> None:
        """Wait until the cluster reports the job topic.

        Joining the group before the topic is in the metadata assigns this worker no
        partitions, and nothing would be consumed until the next metadata refresh.
        """
        topic = self.settings.kafka_topic
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(KafkaError):
                if topic in await self.consumer.topics():
                    return
            self.res.health.beat("worker")
            if await wait_stop(stop, 0.2):
                return
        self.log.bind(action="topic_missing").warning("no partitions for {} yet", topic)

    async def _admit(self, records: list[Any]) -> None:
        """Decode a batch, lease what is still to do in one transaction, queue it."""
        fresh: dict[str, Held] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.offsets.add(tp, record.offset)
            job = _decode(record.value)
            if job is None:
                self.log.bind(action="bad_message", offset=record.offset).error("unreadable job")
                self.offsets.done(tp, record.offset)
                continue
            event_id = job["event_id"]
            held = self._held.get(event_id) or fresh.get(event_id)
            if held is not None and held.attempt >= job["attempt"]:
                # Another copy of a job we hold: settled when that one is.
                self._log_skip(job, "already held")
                held.twins.append((tp, record.offset))
                continue
            item = Held(tp, record.offset, job, _host(job))
            if held is not None and event_id in fresh:  # a newer attempt in the same batch
                item.twins = [*held.twins, (held.tp, held.offset)]
            fresh[event_id] = item
        if not fresh:
            return
        now = self.res.clock.now()
        attempts = {k: h.attempt for k, h in fresh.items()}
        keep, overflow = self._fit(list(fresh.values()))
        delay = {h.event_id: self._requeue_delay(h.host) for h in overflow}

        async def claim() -> set[str]:
            async with self.res.db.transaction() as tx:
                taken = await deliveries.claim(tx, attempts, self.owner, now, now + self.lease)
                for seconds in sorted(set(delay.values())):
                    ids = [i for i, s in delay.items() if s == seconds and i in taken]
                    at = now + timedelta(seconds=seconds)
                    await deliveries.requeue(tx, ids, self.owner, at)
                return taken

        taken = await self._db(claim)
        for item in [*keep, *overflow]:
            if item.event_id not in taken:
                self._log_skip(item.job, "done or leased elsewhere")
                self._settle(item)
            elif item.event_id in delay:
                self.res.metrics.requeued.inc()
                self.log.bind(
                    action="requeued", trigger_id=item.job["trigger_id"], event_id=item.event_id,
                    attempt=item.attempt, delay_s=round(delay[item.event_id], 3),
                ).info("host queue full; handed back for a moment")  # fmt: skip
                self._settle(item)
            else:
                self._hold(item)

    def _fit(self, items: list[Held]) -> tuple[list[Held], list[Held]]:
        """Split new jobs into those that fit their host's queue and those that do not."""
        keep: list[Held] = []
        overflow: list[Held] = []
        planned: dict[str, int] = defaultdict(int)
        for item in items:
            if self._hosts[item.host].held + planned[item.host] < self.host_cap:
                planned[item.host] += 1
                keep.append(item)
            else:
                overflow.append(item)
        return keep, overflow

    def _requeue_delay(self, host: str) -> float:
        """About when the host will have worked through what it holds now."""
        h = self._hosts[host]
        wait = h.held * h.seconds / self.settings.worker_per_host
        return min(REQUEUE_MAX, max(REQUEUE_MIN, wait))

    # -- per-host queues ------------------------------------------------------------------

    def _hold(self, item: Held) -> None:
        earlier = self._held.get(item.event_id)
        if earlier is not None and not earlier.started:
            # A later attempt of a job still queued here (its lease lapsed and the row was
            # re-published): the later one replaces it, and settles its offsets with it.
            # One already in flight cannot be recalled; it settles on its own.
            self._hosts[earlier.host].queue.remove(earlier)
            self._uncount(earlier)
            item.twins += [(earlier.tp, earlier.offset), *earlier.twins]
        self._held[item.event_id] = item
        host = self._hosts[item.host]
        host.held += 1
        item.counted = True
        host.queue.append(item)
        self._waiting[item.host] = None
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued jobs while slots are free, taking hosts in turn."""
        per_host = self.settings.worker_per_host
        limit = self.settings.worker_concurrency
        while self._waiting and self._active < limit and not self._stop.is_set():
            started = False
            for name in list(self._waiting):
                if self._active >= limit:
                    break
                host = self._hosts[name]
                if not host.queue:
                    del self._waiting[name]
                    continue
                if host.active >= per_host:
                    continue
                item = host.queue.popleft()
                if not host.queue:
                    del self._waiting[name]
                else:
                    self._waiting.move_to_end(name)
                host.active += 1
                self._active += 1
                self._idle.clear()
                item.started = True
                task = asyncio.create_task(self._deliver(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started = True
            if not started:
                return

    async def _deliver(self, item: Held) -> None:
        host = self._hosts[item.host]
        began = time.monotonic()
        started_at = self.res.clock.now()
        self.res.metrics.jobs_processing.inc()
        try:
            try:
                result = await self.deliverer.send(item.job, started_at)
            except Exception as exc:  # a bug must not leave the event re-sent forever
                self.log.bind(action="delivery_error", event_id=item.event_id).exception(
                    "delivery raised"
                )
                result = Result(None, f"internal error: {type(exc).__name__}", None, True)
        finally:
            self.res.metrics.jobs_processing.dec()
            host.active -= 1
            self._active -= 1
            host.seconds = 0.8 * host.seconds + 0.2 * (time.monotonic() - began)
            self._dispatch()
            if not self._active:
                self._idle.set()
        self._unstored += 1
        self._all_stored.clear()
        duration_ms = round((time.monotonic() - began) * 1000)
        outcome = self._outcome(item, result, started_at, duration_ms)
        self._outcomes.put_nowait((item, outcome, result))

    def _outcome(
        self, item: Held, result: Result, started_at: datetime, duration_ms: int
    ) -> Attempt:
        now = self.res.clock.now()
        policy = item.job["retry"]
        if result.permanent:
            outcome = retry.Outcome("failure", None)
        else:
            outcome = retry.decide(
                attempt=item.attempt,
                max_attempts=int(policy["max_attempts"]),
                status_code=result.status_code,
                retry_after=retry.parse_retry_after(result.retry_after, now),
                initial_delay=parse_duration(policy["initial_delay"]),
                max_delay=parse_duration(policy["max_delay"]),
                now=now,
                jitter_draw=random.random(),
                # A Retry-After may not push the retry out of the event's active window.
                latest=parse_iso(item.job["fired_at"]) + self.res.settings.retention_active,
            )
        return Attempt(
            event_id=item.event_id,
            attempt=item.attempt,
            status=outcome.status,
            status_code=result.status_code,
            error=result.error,
            delivered_at=now if outcome.status == "success" else None,
            next_attempt_at=outcome.next_attempt_at,
            started_at=started_at,
            duration_ms=duration_ms,
            response_body=result.body,
        )

    # -- outcomes, in batches ---------------------------------------------------------------

    async def _outcome_loop(self) -> None:
        """Store the outcomes that finished meanwhile in one transaction, then settle them."""
        while True:
            batch = [await self._outcomes.get()]
            if self._outcomes.qsize() + 1 < OUTCOME_BATCH:
                # Deliveries first (see OUTCOME_LINGER); at shutdown, `_active` reaches 0
                # once the last delivery ends, so nothing waits past it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), OUTCOME_LINGER)
            while not self._outcomes.empty() and len(batch) < OUTCOME_BATCH:
                batch.append(self._outcomes.get_nowait())
            now = self.res.clock.now()

            attempts = [a for _, a, _ in batch]

            async def store(
                attempts: list[Attempt] = attempts, now: datetime = now
            ) -> tuple[list[bool], list[str]]:
                async with self.res.db.transaction() as tx:
                    stored = await deliveries.record_attempts(tx, attempts, now)
                    # Counted with the outcomes, in their transaction: once each.
                    done = [a for a, ok in zip(attempts, stored, strict=True) if ok]
                    # The dead-letter copies are owed with the failures, in one commit, so
                    # a crash before they are published cannot lose them.
                    failed = [a.event_id for a in done if a.status == "failure"]
                    await deliveries.owe_dead_letters(tx, failed, now + self.lease)
                    return stored, await autopause.record(tx, done, now)

            try:
                stored, paused = await self._db(store)
            except Stopping:
                return  # unsettled: their offsets stay open and Kafka redelivers them
            for trigger_id in paused:
                self.res.metrics.auto_paused.inc()
                self.log.bind(action="auto_paused", trigger_id=trigger_id).warning(
                    "trigger paused after consecutive failed deliveries"
                )
            dead = []
            for (item, attempt, result), ok in zip(batch, stored, strict=True):
                self._report(item, attempt, result, ok, now)
                if ok and attempt.status == "failure":
                    dead.append({
                        **item.job, "final_error": result.error,
                        "final_status_code": result.status_code,
                    })  # fmt: skip
                self._settle(item)
            self._unstored -= len(batch)
            if not self._unstored:
                self._all_stored.set()
            if dead:
                # The outcome is stored; the dead-letter copy must not hold up the next batch.
                task = asyncio.create_task(self._dead_letter(dead))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _dead_letter(self, messages: list[dict[str, Any]]) -> None:
        """Publish the dead-letter copies, then mark them sent; until then the re-publisher
        sends any still owed once they are due (so a copy may go out twice)."""
        if not await self.publisher.publish(messages, self.settings.dlq_topic):
            return
        ids = [m["event_id"] for m in messages]
        try:
            async with self.res.db.transaction() as tx:
                await deliveries.dead_letters_sent(tx, ids)
        except TRANSIENT_ERRORS as exc:
            self.log.bind(action="db_error").warning("dead-letter copies not marked sent: {}", exc)

    def _report(self, item: Held, a: Attempt, result: Result, stored: bool, now: datetime) -> None:
        metrics = self.res.metrics
        metrics.delivery_attempts.labels(a.status).inc()
        log = self.log.bind(
            trigger_id=item.job["trigger_id"],
            event_id=item.event_id,
            attempt=item.attempt,
            status_code=result.status_code,
        )
        if not stored:
            log.bind(action="duplicate_skipped").info("attempt already recorded")
        elif a.status == "retrying":
            log.bind(
                action="retry_scheduled", next_attempt_at=str(a.next_attempt_at), error=result.error
            ).info("retry scheduled")
        else:
            metrics.jobs_processed.labels(a.status).inc()
            # Scheduled time to the endpoint's answer (not to this store, which may have
            # lingered behind other deliveries: OUTCOME_LINGER).
            answered = now
            if a.started_at is not None:
                answered = a.started_at + timedelta(milliseconds=a.duration_ms)
            metrics.observe_delivery(
                max(0.0, (answered - scheduled_time(item.job)).total_seconds())
            )
            if a.status == "success":
                log.info("delivered", action="delivered")
            else:
                log.bind(action="failed", error=result.error).warning("delivery failed for good")

    def _uncount(self, item: Held) -> None:
        if item.counted:
            item.counted = False
            self._hosts[item.host].held -= 1

    def _settle(self, item: Held) -> None:
        """The job's outcome is durable (or its row re-sends it): its offsets may commit."""
        # Counted per item, not by who holds the event id: an attempt in flight when a
        # later one of the same event arrived settles too, and must leave its host.
        self._uncount(item)
        if self._held.get(item.event_id) is item:
            del self._held[item.event_id]
        self.offsets.done(item.tp, item.offset)
        for tp, offset in item.twins:
            self.offsets.done(tp, offset)

    def _log_skip(self, job: dict[str, Any], why: str) -> None:
        self.log.bind(
            action="duplicate_skipped",
            trigger_id=job.get("trigger_id"),
            event_id=job.get("event_id"),
            attempt=job.get("attempt"),
        ).info("job {}", why)

    # -- the database, leases and commits ------------------------------------------------

    async def _db(self, work: Callable[[], Awaitable[T]]) -> T:
        """A write the outcome depends on: retried through a short outage, until stop."""
        delay = 0.1
        while True:
            try:
                return await retry_conflicts(work)
            except TRANSIENT_ERRORS as exc:
                self.log.bind(action="db_error").warning("retrying after: {}", exc)
                if await wait_stop(self._stop, delay):
                    raise Stopping from exc
                delay = min(delay * 2, 5.0)

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        """Keep the leases of the jobs we hold from running out while they wait."""
        every = max(0.2, self.lease.total_seconds() / 4)
        while not await wait_stop(stop, every):
            ids = list(self._held)
            if not ids:
                continue
            now = self.res.clock.now()
            try:
                async with self.res.db.transaction() as tx:
                    await deliveries.renew(tx, ids, self.owner, now + self.lease)
            except TRANSIENT_ERRORS as exc:
                # A lease that runs out only risks a second delivery (at least once).
                self.log.bind(action="db_error").warning("lease renewal failed: {}", exc)

    async def commit(self, partitions: set[TopicPartition] | None) -> None:
        offsets = self.offsets.committable(partitions)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            self.log.bind(action="commit_failed").warning("offset commit failed: {!r}", exc)

    async def _commit_loop(self, stop: asyncio.Event) -> None:
        while not await wait_stop(stop, COMMIT_SECONDS):
            await self.commit(None)

    async def _shutdown(self, helpers: list[asyncio.Task[None]]) -> None:
        """Hand back queued jobs, let deliveries in flight finish within the grace period,
        store their outcomes, hand back what was cut, commit what is settled."""
        await self._hand_back([h for h in self._held.values() if not h.started], "queued")
        grace = self.settings.shutdown_grace.total_seconds()
        deadline = time.monotonic() + grace
        flying = set(self._tasks)
        if flying:
            _, pending = await asyncio.wait(flying, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                self.log.bind(action="drain_timeout").warning(
                    "{} delivery(ies) cut at shutdown; they will be re-delivered", len(pending)
                )
        # Outcomes already made: store them (bounded by what is left of the grace period).
        if self._unstored:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await self._all_stored.wait()
        for helper in helpers:
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Stopping):
                await helper
        # Whatever is still held was cut or could not be stored: its offset stays
        # uncommitted, and without our lease the next owner of its partition takes it
        # at once instead of waiting for the lease to run out.
        await self._hand_back(list(self._held.values()), "unfinished")
        await self.commit(None)
        await self.consumer.stop()
        await self.deliverer.stop()

    async def _hand_back(self, items: list[Held], what: str) -> None:
        if not items:
            return
        with contextlib.suppress(TimeoutError, *TRANSIENT_ERRORS):
            async with asyncio.timeout(HAND_BACK_SECONDS), self.res.db.transaction() as tx:
                await deliveries.release(tx, [h.event_id for h in items], self.owner)
        self.log.bind(action="handed_back", count=len(items)).info(
            "{} {} job(s) handed back", len(items), what
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
