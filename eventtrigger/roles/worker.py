"""The worker role: consume jobs, lease them, deliver them host by host, store outcomes in
batches, then commit offsets.

Backpressure stays in this process and never goes through recovery (invariant 9,
docs/design.md): a job is leased when it is consumed and waits in its host's in-memory
queue until the host has a free slot (a per-host limit inside a global one), so one slow
endpoint holds only its own slots and queue, never the consumer. A host (scheme, host and
port: `endpoint_key`) holds in memory only what it can take soon: a few seconds of its
observed throughput, at least a few rounds of its slots. Jobs beyond that are parked:
the event row is the truth, so the job's row gets a due time and no lease, its offset is
settled, and the re-publisher publishes it again when due. A host's parked jobs get due
times spread at its pace, one after the other, so they come back in order as it drains;
jobs that arrive while a host has a line of parked jobs join the line, and a job coming
back from the line goes ahead of them. Parking is not an attempt (the attempt number is
unchanged). Memory therefore stays bounded whatever the backlog, and the process-wide
cap, past which the consumer pauses its partitions, is for many busy hosts, never one or
two slow ones.

A message that cannot be a job (not JSON, a field missing or malformed, an unusable URL,
too large) is copied to the dead-letter topic with the reason (and no secret), counted
in `eventtrigger_jobs_rejected_total{reason}` and settled: the worker never dies of its
input, and its partition keeps moving.

An offset is committed only past jobs whose outcome is stored, or whose row makes sure
the job is sent again (parked, or leased by another live worker); a crash therefore
re-delivers (at least once), and the attempt number on the event row keeps the log to
one outcome per attempt. Retries are rows with a `next_attempt_at`, re-published by the
scheduler, so a failing endpoint never holds a slot while it waits.

Each loop beats under its own name (`worker`, and `leases`, `outcomes`, `commits`), and
none waits without a timeout, so a stuck one shows as stalled.

This module is the I/O shell; offsets (`worker_offsets`), per-host bookkeeping and the
hold-or-park plan (`worker_hosts`) and what an outcome means and how a batch of them is
stored (`worker_outcomes`) live in modules of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from loguru import logger

from eventtrigger.bus import Publisher, job_consumer
from eventtrigger.clock import wait_stop
from eventtrigger.delivery import Deliverer, Result
from eventtrigger.domain.jobs import (
    BadJob,
    dead_letter,
    rejected_message,
    scheduled_time,
    with_secrets,
)
from eventtrigger.resources import Resources
from eventtrigger.roles.worker_hosts import (
    Held,
    Host,
    ParkedLog,
    Plan,
    plan_batch,
    read_job,
    soon_cap,
)
from eventtrigger.roles.worker_offsets import Offsets
from eventtrigger.roles.worker_outcomes import attempt_outcome, store_outcomes
from eventtrigger.store import deliveries
from eventtrigger.store.db import TRANSIENT_ERRORS, retry_conflicts
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.secrets import EventSecrets, event_secrets

# Held and Host are the worker's in-memory jobs and hosts, kept importable from here.
__all__ = ["Held", "Host", "Offsets", "Worker", "read_job", "run"]

COMMIT_SECONDS = 0.5
HOST_QUEUE_ROUNDS = 256  # a host never holds more than this many rounds of its slots
BEAT_SECONDS = 5.0  # an idle loop still beats this often
REJECT_RETRY_MAX = 5.0  # seconds between tries to dead-letter a message that is no job
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
T = TypeVar("T")


class Stopping(Exception):
    """The stop event was set while a database write was waiting for the database."""


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
        self.deliverer = Deliverer(res.settings.egress)
        self.consumer = job_consumer(res.settings)
        self.offsets = Offsets()
        self.log = logger.bind(role="worker")
        self.host_cap = res.settings.worker_per_host * HOST_QUEUE_ROUNDS
        self.lease = res.settings.recovery_after
        self._held: dict[str, Held] = {}  # by event id
        self._hosts: dict[str, Host] = {}  # by endpoint_key; idle ones are pruned
        self._waiting: OrderedDict[str, None] = OrderedDict()  # hosts with queued jobs
        self._active = 0
        self._paused = False
        self._outcomes: asyncio.Queue[tuple[Held, Attempt, Result]] = asyncio.Queue()
        self._idle = asyncio.Event()  # no delivery in flight: outcomes need not linger
        self._idle.set()
        self._unstored = 0  # outcomes made, not yet stored
        self._all_stored = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rejects: set[asyncio.Task[None]] = set()  # dead-letter copies of non-jobs
        self._parked_log: dict[str, ParkedLog] = {}  # parked since the last `parked` lines
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

    def _host(self, name: str) -> Host:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = Host()
        return host

    async def _admit(self, records: list[Any]) -> None:
        """Decode a batch, lease what is still to do in one transaction, then hold what its
        host can take soon and park the rest (in the same transaction)."""
        fresh: dict[str, Held] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.offsets.add(tp, record.offset)
            try:
                job, host = read_job(record.value)
            except BadJob as exc:
                self._reject(record, tp, exc.reason, exc.detail)
                continue
            event_id = job["event_id"]
            held = self._held.get(event_id) or fresh.get(event_id)
            if held is not None and held.attempt >= job["attempt"]:
                # Another copy of a job we hold: settled when that one is.
                self._log_skip(job, "already held")
                held.twins.append((tp, record.offset))
                continue
            item = Held(tp, record.offset, job, host)
            if held is not None and event_id in fresh:  # a newer attempt in the same batch
                item.twins = [*held.twins, (held.tp, held.offset)]
            fresh[event_id] = item
        if not fresh:
            return
        now = self.res.clock.now()
        attempts = {k: h.attempt for k, h in fresh.items()}
        per_host = self.settings.worker_per_host
        clock = time.monotonic()
        hosts = {}
        for name in {h.host for h in fresh.values()}:
            state = self._host(name)
            seconds = state.delivery_seconds(clock)
            cap = soon_cap(per_host, seconds, self.host_cap)
            hosts[name] = (state.held, cap, seconds, state.parked_until)

        async def claim() -> tuple[dict[str, bool], Plan, EventSecrets]:
            async with self.res.db.transaction() as tx:
                taken = await deliveries.claim_jobs(tx, attempts, self.owner, now, now + self.lease)
                mine = [h for h in fresh.values() if h.event_id in taken]
                plan = plan_batch(mine, taken, hosts, per_host, now)
                if plan.park:
                    await deliveries.park(tx, plan.park, self.owner)
                # Jobs carry no secrets: those of the jobs held here come from their rows.
                keys = await event_secrets(tx, [h.event_id for h in plan.keep])
                return taken, plan, keys

        taken, plan, keys = await self._db(claim)
        for item in plan.keep:
            item.job = with_secrets(item.job, keys.found.get(item.event_id, {}))
            item.secret_error = keys.unreadable.get(item.event_id)
        for name, line in plan.lines.items():
            self._host(name).parked_until = line
        parked: dict[str, list[Held]] = defaultdict(list)
        for item in fresh.values():
            if item.event_id not in taken:
                self._log_skip(item.job, "done or leased elsewhere")
                self._settle(item)
            elif item.event_id in plan.park:
                parked[item.host].append(item)
                self._settle(item)
        for item in plan.keep:
            self._hold(item)
        for name, items in parked.items():
            self._log_parked(name, items, plan.park, now)

    def _log_parked(
        self, host: str, items: list[Held], due: dict[str, datetime], now: datetime
    ) -> None:
        """Noted now, logged by `_flush_parked` in one line per host and lease-loop turn: a
        backlog parks thousands of jobs, in batches of a few."""
        self.res.metrics.requeued.inc(len(items))
        times = [due[h.event_id] for h in items]
        seen = self._parked_log.get(host)
        if seen is None:
            seen = self._parked_log[host] = ParkedLog(now, min(times), max(times))
        seen.count += len(items)
        seen.first_due = min(seen.first_due, *times)
        seen.last_due = max(seen.last_due, *times)
        seen.sample += [h.event_id for h in items[: max(0, 10 - len(seen.sample))]]

    def _flush_parked(self) -> None:
        for host, seen in self._parked_log.items():
            self.log.bind(
                action="parked", host=host, count=seen.count, held=self._host(host).held,
                first_due_s=round((seen.first_due - seen.since).total_seconds(), 3),
                last_due_s=round((seen.last_due - seen.since).total_seconds(), 3),
                event_ids=seen.sample,
            ).info("{} job(s) parked until their host has room", seen.count)  # fmt: skip
        self._parked_log.clear()

    def _reject(self, record: Any, tp: TopicPartition, reason: str, detail: str) -> None:
        """A message that is no job: counted, logged, copied to the dead-letter topic; its
        offset is settled once the copy is in Kafka."""
        self.res.metrics.jobs_rejected.labels(reason).inc()
        self.log.bind(
            action="job_rejected", reason=reason, detail=detail[:300], partition=tp.partition,
            offset=record.offset,
        ).error("not a job: {}", reason)  # fmt: skip
        message = rejected_message(
            record.value, reason, detail, tp.topic, tp.partition, record.offset
        )
        task = asyncio.create_task(self._dead_letter_rejected(message, tp, record.offset))
        self._rejects.add(task)
        task.add_done_callback(self._rejects.discard)

    async def _dead_letter_rejected(
        self, message: dict[str, Any], tp: TopicPartition, offset: int
    ) -> None:
        delay = 0.2
        while True:
            try:
                if await self.publisher.publish([message], self.settings.dlq_topic):
                    break
            except Exception:  # a bug here must not pin the partition silently
                self.log.bind(action="dead_letter_error", offset=offset).exception(
                    "dead-letter copy of a rejected message failed"
                )
            # Until Kafka has the copy the offset stays open (a restart reads it again).
            if await wait_stop(self._stop, delay):
                return
            delay = min(delay * 2, REJECT_RETRY_MAX)
        self.offsets.done(tp, offset)

    # -- per-host queues ------------------------------------------------------------------

    def _hold(self, item: Held) -> None:
        earlier = self._held.get(item.event_id)
        if earlier is not None and not earlier.started:
            # A later attempt of a job still queued here (its lease lapsed and the row was
            # re-published): the later one replaces it, and settles its offsets with it.
            # One already in flight cannot be recalled; it settles on its own. (One being
            # parked has left the queue already.)
            with contextlib.suppress(ValueError):
                self._hosts[earlier.host].queue.remove(earlier)
            self._uncount(earlier)
            item.twins += [(earlier.tp, earlier.offset), *earlier.twins]
        self._held[item.event_id] = item
        host = self._host(item.host)
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
                host.started[id(item)] = time.monotonic()
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
                if item.secret_error is not None:
                    # Another process wrote it under a key this one lacks: retried (by
                    # any worker), never sent unsigned.
                    result = Result(None, f"signing secret: {item.secret_error}", None)
                elif "signing_secret" in item.job:
                    result = await self.deliverer.send(item.job, started_at)
                else:  # no row of ours lacks one; an attempt cannot go out unsigned
                    result = Result(None, "no signing secret for this event", None, True)
            except Exception as exc:  # a bug must not leave the event re-sent forever
                self.log.bind(action="delivery_error", event_id=item.event_id).exception(
                    "delivery raised"
                )
                result = Result(None, f"internal error: {type(exc).__name__}", None, True)
        finally:
            self.res.metrics.jobs_processing.dec()
            host.active -= 1
            host.started.pop(id(item), None)
            self._active -= 1
            host.seconds = 0.8 * host.seconds + 0.2 * (time.monotonic() - began)
            self._dispatch()
            if not self._active:
                self._idle.set()
        self._unstored += 1
        self._all_stored.clear()
        duration_ms = round((time.monotonic() - began) * 1000)
        outcome = self._outcome(item, result, started_at, duration_ms)
        if self.res.tracing is not None:
            seconds = time.monotonic() - began
            self.res.tracing.attempt(item.job, result, outcome, started_at, seconds)
        self._outcomes.put_nowait((item, outcome, result))

    def _outcome(
        self, item: Held, result: Result, started_at: datetime, duration_ms: int
    ) -> Attempt:
        return attempt_outcome(
            item.job, result, started_at, duration_ms, self.res.clock.now(),
            self.res.settings.retention_active, random.random(),
        )  # fmt: skip

    # -- outcomes, in batches ---------------------------------------------------------------

    async def _outcome_loop(self) -> None:
        """Store the outcomes that finished meanwhile in one transaction, then settle them."""
        getter: asyncio.Task[tuple[Held, Attempt, Result]] | None = None
        try:
            while True:
                self.res.health.beat("worker", "outcomes")
                if getter is None:
                    getter = asyncio.create_task(self._outcomes.get())
                done, _ = await asyncio.wait({getter}, timeout=BEAT_SECONDS)
                if not done:
                    continue  # idle: beat again
                first, getter = getter.result(), None
                await self._store_outcomes(first)
        except Stopping:
            return
        finally:
            if getter is not None:
                getter.cancel()

    async def _store_outcomes(self, first: tuple[Held, Attempt, Result]) -> None:
        """`first` and whatever else finished meanwhile, stored in one transaction."""
        batch = [first]
        if self._outcomes.qsize() + 1 < OUTCOME_BATCH:
            # Deliveries first (see OUTCOME_LINGER); at shutdown, `_active` reaches 0
            # once the last delivery ends, so nothing waits past it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), OUTCOME_LINGER)
        while not self._outcomes.empty() and len(batch) < OUTCOME_BATCH:
            batch.append(self._outcomes.get_nowait())
        now = self.res.clock.now()

        attempts = [a for _, a, _ in batch]

        async def store(attempts: list[Attempt] = attempts) -> tuple[list[bool], list[str]]:
            # Stamped on each try: a commit retried after an outage must not carry a time
            # the live tail's look-back has already passed.
            stamp = self.res.clock.now()
            async with self.res.db.transaction() as tx:
                return await store_outcomes(tx, attempts, stamp, stamp + self.lease)

        # Stopping propagates: unsettled, their offsets stay open and Kafka redelivers them.
        stored, paused = await self._db(store)
        for trigger_id in paused:
            self.res.metrics.auto_paused.inc()
            self.log.bind(action="auto_paused", trigger_id=trigger_id).warning(
                "trigger paused after consecutive failed deliveries"
            )
        dead = []
        for (item, attempt, result), ok in zip(batch, stored, strict=True):
            self._report(item, attempt, result, ok, now)
            if ok and attempt.status == "failure":
                dead.append(dead_letter(item.job, result.error, result.status_code))
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
        while not await wait_stop(stop, min(every, BEAT_SECONDS)):
            self.res.health.beat("worker", "leases")
            now = self.res.clock.now()
            self._prune(now)
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await self._shed(now)
            self._flush_parked()
            ids = list(self._held)
            if not ids:
                continue
            try:
                async with self.res.db.transaction() as tx:
                    await deliveries.renew(tx, ids, self.owner, now + self.lease)
            except TRANSIENT_ERRORS as exc:
                # A lease that runs out only risks a second delivery (at least once).
                self.log.bind(action="db_error").warning("lease renewal failed: {}", exc)

    async def _shed(self, now: datetime) -> None:
        """Park the queued jobs a host holds beyond what it can take soon, newest first:
        a host found slow after its jobs were taken (its deliveries now take long) gives
        back what it would otherwise keep in memory for minutes."""
        per_host = self.settings.worker_per_host
        clock = time.monotonic()
        due: dict[str, datetime] = {}
        shed: list[Held] = []
        lines: dict[str, datetime] = {}
        for name, host in self._hosts.items():
            seconds = host.delivery_seconds(clock)
            extra = min(host.held - soon_cap(per_host, seconds, self.host_cap), len(host.queue))
            if extra <= 0:
                continue
            step = timedelta(seconds=seconds / per_host)
            tail = [host.queue.pop() for _ in range(extra)][::-1]  # leave the queue now
            at = now + step * (host.held - extra)
            for item in tail:
                at += step
                due[item.event_id] = at
            shed += tail
            if host.parked_until is None or host.parked_until < at:
                lines[name] = at
        if not shed:
            return
        try:
            async with self.res.db.transaction() as tx:
                await deliveries.park(tx, due, self.owner)
        except BaseException:
            for item in shed:  # still ours: back in its queue
                if self._held.get(item.event_id) is item:
                    self._hosts[item.host].queue.append(item)
                    self._waiting[item.host] = None
            self._dispatch()
            raise
        for name, at in lines.items():
            self._host(name).parked_until = at
        by_host: dict[str, list[Held]] = defaultdict(list)
        for item in shed:
            by_host[item.host].append(item)
            self._settle(item)
        for name, items in by_host.items():
            self._log_parked(name, items, due, now)

    def _prune(self, now: datetime) -> None:
        """Forget hosts with nothing queued, in flight or held and no parked line."""
        for name in [n for n, h in self._hosts.items() if h.idle(now)]:
            del self._hosts[name]
            self._waiting.pop(name, None)

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
            self.res.health.beat("worker", "commits")
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
        for helper in [*helpers, *self._rejects]:
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Stopping):
                await helper
        for loop in ("leases", "outcomes", "commits"):
            self.res.health.forget("worker", loop)
        self._flush_parked()
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


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Worker(res, res.jobs).run(stop)
