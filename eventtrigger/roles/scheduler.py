"""The scheduler role: turns due occurrences into events and jobs, on time.

Claiming: every POLL_SECONDS, claim occurrences due within LOOKAHEAD (SKIP LOCKED, a
lease in our name) into an in-memory queue ordered by fire time. Firing: one loop sleeps
until the earliest fire time, then takes everything due by then, however many distinct
instants that spans, and fires it in one transaction (re-check the claims under lock,
create the events, complete the occurrences, insert the next ones). While one firing
transaction runs the next due occurrences queue up, so under load the batches grow by
themselves instead of the transactions piling up. The jobs go to Kafka in the
background, so the next firing never waits for the last publish.

A separate loop (`republisher.py`) re-publishes events whose deadline passed. Any
number of schedulers may run: the row locks, the lease owner check and
UNIQUE(occurrence_id) make a second firing of one occurrence impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from eventtrigger.bus import Outbox, Publisher
from eventtrigger.clock import wait_stop
from eventtrigger.domain.jobs import (
    NewEvent,
    event_dict,
    job_message,
    request_snapshot,
)
from eventtrigger.ids import new_id
from eventtrigger.resources import Resources
from eventtrigger.roles import occurrences
from eventtrigger.roles.republisher import Republisher, observe_lateness
from eventtrigger.store import deliveries, schedules
from eventtrigger.store.db import TRANSIENT_ERRORS, retry_conflicts
from eventtrigger.store.schedules import Due

LOOKAHEAD = timedelta(seconds=2)  # claim this far ahead, so firing is a local timer
POLL_SECONDS = 0.25
CLAIM_LIMIT = 2000
FIRE_BATCH = 250  # occurrences per firing transaction: the first jobs leave while the rest commit
FIRING_AT_ONCE = 2  # firing transactions in flight together
MAX_FIRE_ATTEMPTS = 3  # claims of an occurrence whose firing fails before it is given up


class Scheduler:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.log = logger.bind(role="scheduler")
        self.outbox = Outbox(publisher, self._published)
        self.republisher = Republisher(res, publisher)
        self._due: list[tuple[datetime, int]] = []  # claimed, not fired: (fire_at, id) heap
        self._known: set[int] = set()  # ids in _due or being fired
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.log.bind(action="role_started").info("scheduler {} started", self.owner)
        # Re-publishing has its own loop: a slow or unreachable Kafka must never delay
        # claiming or firing, which is what keeps firings on time.
        helpers = [
            asyncio.create_task(
                Republisher(self.res, self.publisher).run(stop), name="republisher"
            ),
            asyncio.create_task(self._fire_loop(stop), name="firing"),
        ]
        try:
            while not stop.is_set():
                self.res.health.beat("scheduler")
                try:
                    await self._claim()
                except TRANSIENT_ERRORS as exc:
                    self.log.bind(action="db_error").warning("scheduler tick failed: {}", exc)
                for helper in helpers:
                    if helper.done():
                        helper.result()  # a crashed loop takes the role down, loudly
                await wait_stop(stop, POLL_SECONDS)
        finally:
            self._wake.set()  # on stop, the firing loop finishes its batch and returns
            for helper in helpers:
                if not stop.is_set() or helper.get_name() == "republisher":
                    helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            await self.outbox.close(self.res.settings.shutdown_grace.total_seconds())
            # Hand back claims we hold but did not fire, for another scheduler.
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await schedules.release_all(self.res.db, self.owner)

    async def _claim(self) -> None:
        now = self.res.clock.now()
        claimed = await schedules.claim(
            self.res.db,
            self.owner,
            now,
            horizon=now + LOOKAHEAD,
            lease_until=now + LOOKAHEAD + self.res.settings.recovery_after,
            limit=CLAIM_LIMIT,
        )
        fresh = [(at, i) for at, i in claimed if i not in self._known]
        for item in fresh:
            heapq.heappush(self._due, item)
            self._known.add(item[1])
        if fresh:
            self._wake.set()
            self.log.bind(action="claimed", count=len(fresh)).debug(
                "claimed {} occurrence(s)", len(fresh)
            )

    async def _fire_loop(self, stop: asyncio.Event) -> None:
        """Sleep until the earliest claimed fire time; fire everything due by then.

        While a backlog lasts, up to FIRING_AT_ONCE full batches are in their transactions
        together, so one batch's round trips to the database overlap the next one's work.
        """
        slots = asyncio.Semaphore(FIRING_AT_ONCE)
        firing: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                now = self.res.clock.now()
                delay = (self._due[0][0] - now).total_seconds() if self._due else 1.0
                if delay > 0:
                    # Woken early by a new claim (maybe an earlier one) or by stop; timers
                    # may also wake a little early, so the clock is read again either way.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    continue
                if firing and not self._full_batch_due(now):
                    # Under a steady stream, let the next batch grow while this one
                    # commits; a second transaction only pays off for a backlog.
                    await asyncio.wait(firing)
                    continue
                await slots.acquire()
                now = self.res.clock.now()
                ids: list[int] = []
                while self._due and self._due[0][0] <= now and len(ids) < FIRE_BATCH:
                    ids.append(heapq.heappop(self._due)[1])
                task = asyncio.create_task(self._fire_batch(ids, slots))
                firing.add(task)
                task.add_done_callback(firing.discard)
                for done in [t for t in firing if t.done()]:
                    done.result()  # a bug in firing takes the role down, loudly
        finally:
            if firing:
                await asyncio.wait(firing)

    def _full_batch_due(self, now: datetime) -> bool:
        if len(self._due) < FIRE_BATCH:
            return False
        return heapq.nsmallest(FIRE_BATCH, self._due)[-1][0] <= now

    async def _fire_batch(self, ids: list[int], slots: asyncio.Semaphore) -> None:
        try:
            await retry_conflicts(lambda: self._fire(ids))
        except TRANSIENT_ERRORS as exc:
            # The claims stay ours until their lease expires; then any scheduler retries.
            self.log.bind(action="fire_failed").warning("firing {} failed: {}", ids, exc)
        finally:
            self._known.difference_update(ids)
            slots.release()

    async def _fire(self, ids: list[int]) -> None:
        events: list[NewEvent] = []
        broken: list[tuple[NewEvent, str]] = []
        upcoming: list[tuple[str, datetime, datetime]] = []
        finished: list[str] = []
        again: list[int] = []
        async with self.res.db.transaction() as tx:
            due = await schedules.lock_for_fire(tx, ids, self.owner)
            if not due:
                return
            # Read after the locks: a wait for them (a pause or edit committing) is part of
            # the firing's lateness, and the publish deadline counts from the real firing.
            now = self.res.clock.now()
            deadline = now + self.res.settings.recovery_after
            for d in due:
                if d.trigger_status != "active":
                    continue  # paused or edited since the claim: completed, not fired
                try:
                    # Misfire and jitter policies decide what fires and what comes next.
                    fired, nxt, plan = occurrences.fire(d, now, deadline)
                except Exception as exc:  # one bad occurrence must not block its batch
                    if d.attempt_count < MAX_FIRE_ATTEMPTS:
                        again.append(d.id)
                        self.log.bind(
                            action="fire_error", trigger_id=d.trigger_id, attempt=d.attempt_count
                        ).warning("cannot fire occurrence {}: {!r}; will retry", d.id, exc)
                    else:
                        broken.append((_failed_event(d, now), _schedule_error(exc)))
                    continue
                events.extend(fired)
                if plan.misfired:
                    self.res.metrics.misfires.labels(plan.policy).inc()
                    self.log.bind(
                        action="misfire", trigger_id=d.trigger_id, policy=plan.policy,
                        fired=len(fired), fire_at=str(d.fire_at),
                    ).warning("occurrence found past its misfire grace")  # fmt: skip
                if nxt is None:
                    finished.append(d.trigger_id)
                else:
                    upcoming.append((d.trigger_id, *nxt))
            await schedules.record_firing(
                tx,
                events=[*events, *(e for e, _ in broken)],
                done=[d.id for d in due if d.id not in again],
                upcoming=upcoming,
                finished=finished,
                now=now,
            )
            await schedules.release_some(tx, again, self.owner, now)
            await deliveries.mark_failed(tx, broken, now)
        for e, error in broken:
            self.res.metrics.schedule_errors.inc()
            self.log.bind(action="fire_failed_for_good", trigger_id=e.trigger_id, event_id=e.id,
                          error=error).error("occurrence recorded as failed")  # fmt: skip
        # Jobs first, log lines after (they take a noticeable while for a big batch).
        self.outbox.send([job_message(event_dict(e)) for e in events])
        await asyncio.sleep(0)  # let the next batch start its transaction meanwhile
        for e in events:
            self.log.info(
                "fired",
                action="fired",
                trigger_id=e.trigger_id,
                event_id=e.id,
                attempt=1,
                lateness_ms=round((now - e.scheduled_at).total_seconds() * 1000, 1),
            )

    def _published(self, messages: list[dict[str, Any]], ok: bool) -> None:
        """Lateness metrics per job; one log line per batch (naming every event), since a
        line per job costs as much as publishing it."""
        if not ok:
            return
        worst = observe_lateness(self.res, messages)
        self.log.info(
            "published {} job(s)",
            len(messages),
            action="published",
            count=len(messages),
            event_ids=[m["event_id"] for m in messages],
            max_lateness_ms=round(worst * 1000, 1),
        )


def _failed_event(d: Due, now: datetime) -> NewEvent:
    """The event that records an occurrence we could not fire (never published)."""
    try:
        request = request_snapshot(d.config, d.signing_secret)
    except (KeyError, TypeError, AttributeError):
        request = {}
    return NewEvent(
        id=new_id(now),
        trigger_id=d.trigger_id,
        trigger_type=d.trigger_type,
        source="scheduled",
        scheduled_at=d.fire_at,
        fired_at=now,
        payload=d.config.get("payload") if isinstance(d.config, dict) else None,
        request=request,
        next_attempt_at=now,
        occurrence_id=d.id,
    )


def _schedule_error(exc: Exception) -> str:
    return (
        f"the trigger's schedule could not be computed ({type(exc).__name__}: {exc}); "
        "it will not fire again until its config is fixed"
    )[:500]


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Scheduler(res, res.jobs).run(stop)
