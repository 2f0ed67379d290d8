"""The scheduler role: turns due occurrences into events and jobs, on time.

Claiming: every POLL_SECONDS, claim occurrences due within LOOKAHEAD (SKIP LOCKED, a
lease in our name) into an in-memory queue ordered by fire time. Firing: one loop sleeps
until the earliest fire time, then takes everything due by then, however many distinct
instants that spans, and fires it in one transaction (re-check the claims under lock,
create the events, complete the occurrences, insert the next ones). While one firing
transaction runs the next due occurrences queue up, so under load the batches grow by
themselves instead of the transactions piling up (a slow one is not waited for long:
the next due batch goes beside it). The jobs go to Kafka in the background, so the next
firing never waits for the last publish.

A row another transaction holds (an operator's open transaction on a trigger or its
occurrence) is skipped, not waited for: the rest of its batch fires, and the held
occurrence stays claimed and is tried again every HELD_RETRY until it fires, once. A
firing that fails is tried again; one that fails for a reason other than the database
being unreachable is split up so the rest of its batch fires, and an occurrence whose
firing fails MAX_FIRE_ATTEMPTS times is recorded as a failed event. Health: the claim
loop beats as "scheduler", the firing loop as "firing" while it can fire (and at least
every IDLE_WAKE while idle); stuck or failing batch after batch, it falls silent and
/health names it.

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
from asyncio import FIRST_COMPLETED
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from eventtrigger.bus import BackgroundPublisher, Publisher
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
# Failed firings of an occurrence (claims of it, for a schedule error) before it is given up.
MAX_FIRE_ATTEMPTS = 3
IDLE_WAKE = 1.0  # s: the firing loop turns (and beats) at least this often
BATCH_GROW = 0.2  # s: how long due occurrences wait for a firing in flight before going beside it
HELD_RETRY = timedelta(seconds=0.25)  # an occurrence another transaction holds locked: next try
FAILED_RETRY = timedelta(seconds=1)  # an occurrence whose firing failed: next try


class Scheduler:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.log = logger.bind(role="scheduler")
        self.background = BackgroundPublisher(publisher, self._published)
        self.republisher = Republisher(res, publisher)
        self._due: list[tuple[datetime, int]] = []  # claimed, not fired: (fire_at, id) heap
        self._known: set[int] = set()  # ids in _due or being fired
        self._wake = asyncio.Event()
        self._alone: set[int] = set()  # ids that broke a batch: each is fired by itself
        self._errors: dict[int, int] = {}  # id -> failed firings so far (not transient ones)
        self._failing = 0  # firing transactions failed in a row (the firing loop stays silent)
        self._held: set[int] = set()  # ids skipped because another transaction locks them

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
            await self.background.close(self.res.settings.shutdown_grace.total_seconds())
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
        A batch that takes long (a slow commit) holds the next due ones back for at most
        BATCH_GROW: they are fired beside it rather than behind it.
        """
        firing: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                for done in [t for t in firing if t.done()]:
                    firing.discard(done)
                    done.result()  # `_fire_batch` handles firing errors; a bug is loud
                busy = len(firing) >= FIRING_AT_ONCE
                if not busy and not self._failing:
                    # Beats while it can fire (or has nothing to fire): a loop whose every
                    # slot is stuck, or whose every batch fails, falls silent and /health
                    # names it.
                    self.res.health.beat("scheduler", "firing")
                self._wake.clear()
                now = self.res.clock.now()
                delay = (self._due[0][0] - now).total_seconds() if self._due else IDLE_WAKE
                if delay > 0:
                    # Woken early by a new claim (maybe an earlier one) or by stop; timers
                    # may also wake a little early, so the clock is read again either way.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), min(delay, IDLE_WAKE))
                    continue
                if busy:
                    await asyncio.wait(firing, timeout=IDLE_WAKE, return_when=FIRST_COMPLETED)
                    continue
                if firing and not self._full_batch_due(now):
                    # Under a steady stream, let the next batch grow while this one
                    # commits; a second transaction only pays off for a backlog, or when
                    # the one in flight is slow.
                    finished, _ = await asyncio.wait(
                        firing, timeout=BATCH_GROW, return_when=FIRST_COMPLETED
                    )
                    if finished:
                        continue
                    now = self.res.clock.now()
                ids = [heapq.heappop(self._due)[1]]
                if ids[0] not in self._alone:  # one that broke a batch goes alone
                    while (
                        self._due
                        and self._due[0][0] <= now
                        and len(ids) < FIRE_BATCH
                        and self._due[0][1] not in self._alone
                    ):
                        ids.append(heapq.heappop(self._due)[1])
                firing.add(asyncio.create_task(self._fire_batch(ids), name="fire-batch"))
        finally:
            if firing:
                await asyncio.wait(firing)
            if stop.is_set():
                self.res.health.forget("scheduler", "firing")

    def _full_batch_due(self, now: datetime) -> bool:
        if len(self._due) < FIRE_BATCH:
            return False
        return heapq.nsmallest(FIRE_BATCH, self._due)[-1][0] <= now

    async def _fire_batch(self, ids: list[int]) -> None:
        """Fire `ids`; put back in the queue what must be tried again: occurrences another
        transaction holds locked, and those of a failed firing."""
        later: list[tuple[datetime, int]] = []
        try:
            held = await retry_conflicts(lambda: self._fire(ids))
        except TRANSIENT_ERRORS as exc:
            # The database is unreachable (or a lock conflict was lost again and again):
            # the claims stay ours and are tried again; if the lease runs out meanwhile,
            # another scheduler may take them, and our next try then finds them gone.
            self._failing += 1
            self.log.bind(action="fire_failed", count=len(ids), error=repr(exc)).warning(
                "firing {} occurrence(s) failed: {!r}; will retry", len(ids), exc
            )
            retry_at = self.res.clock.now() + FAILED_RETRY
            later = [(retry_at, i) for i in ids]
        except Exception as exc:
            self._failing += 1
            self.log.bind(action="fire_failed", count=len(ids), error=repr(exc)).opt(
                exception=exc
            ).error("firing {} occurrence(s) failed: {!r}", len(ids), exc)
            later = await self._after_failure(ids, exc)
        else:
            self._failing = 0
            if held:
                retry_at = self.res.clock.now() + HELD_RETRY
                later = [(retry_at, i) for i in held]
                if fresh := [i for i in held if i not in self._held]:  # once per hold
                    self._held.update(fresh)
                    self.log.bind(action="fire_deferred", occurrence_ids=fresh).warning(
                        "{} occurrence(s) locked by another transaction; will retry", len(fresh)
                    )
        finally:
            again = {i for _, i in later}
            for i in ids:
                if i not in again:
                    self._known.discard(i)
                    self._alone.discard(i)
                    self._errors.pop(i, None)
                    self._held.discard(i)
            for item in later:
                heapq.heappush(self._due, item)
            if later:
                self._wake.set()

    async def _after_failure(self, ids: list[int], exc: Exception) -> list[tuple[datetime, int]]:
        """A firing failed with an error that trying again at once will not cure by itself
        (bad data, a bug): find the occurrence behind it and stop retrying it, so the
        others fire. What to try again, and when."""
        now = self.res.clock.now()
        if len(ids) > 1:
            # Which occurrence broke the batch is unknown: each is fired alone next.
            self._alone.update(ids)
            return [(now, i) for i in ids]
        occurrence = ids[0]
        failures = self._errors[occurrence] = self._errors.get(occurrence, 0) + 1
        if failures < MAX_FIRE_ATTEMPTS:
            return [(now + FAILED_RETRY, occurrence)]
        try:
            await self._give_up(occurrence, exc, now)
        except TRANSIENT_ERRORS as again:
            self.log.bind(action="db_error").warning("cannot record a failed firing: {}", again)
            return [(now + FAILED_RETRY, occurrence)]
        return []

    async def _give_up(self, occurrence: int, exc: Exception, now: datetime) -> None:
        """Record an occurrence whose firing failed MAX_FIRE_ATTEMPTS times as a failed
        event, as one whose schedule cannot be computed is, and complete it."""
        error = _fire_error(exc)

        async def record(with_event: bool) -> NewEvent | None:
            async with self.res.db.transaction() as tx:
                due = await schedules.lock_for_fire(tx, [occurrence], self.owner)
                if not due:
                    return None  # cancelled, re-claimed or locked: not ours to close now
                event = _failed_event(due[0], now) if with_event else None
                await schedules.record_firing(
                    tx, events=[event] if event else [], done=[occurrence], upcoming=[],
                    finished=[], now=now,
                )  # fmt: skip
                if event is not None:
                    await deliveries.mark_failed(tx, [(event, error)], now)
                return event

        try:
            event = await record(with_event=True)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            # Storing the event fails too (the same bad data, likely): complete the
            # occurrence without one, so at least it stops blocking its trigger's slot.
            event = await record(with_event=False)
        self.res.metrics.schedule_errors.inc()
        if event is not None and self.res.tracing is not None:
            self.res.tracing.event(event, self.res.clock.now(), error=error)
        self.log.bind(
            action="fire_failed_for_good", occurrence_id=occurrence,
            trigger_id=event.trigger_id if event else None,
            event_id=event.id if event else None, error=error,
        ).error("occurrence recorded as failed")  # fmt: skip

    async def _fire(self, ids: list[int]) -> list[int]:
        """Fire the occurrences of `ids` still ours in one transaction; those another
        transaction holds locked are left for later and returned."""
        events: list[NewEvent] = []
        broken: list[tuple[NewEvent, str]] = []
        upcoming: list[tuple[str, datetime, datetime]] = []
        finished: list[str] = []
        again: list[int] = []
        async with self.res.db.transaction() as tx:
            due = await schedules.lock_for_fire(tx, ids, self.owner)
            locked = {d.id for d in due}
            held = await schedules.held_elsewhere(
                tx, [i for i in ids if i not in locked], self.owner
            )
            if not due:
                return held
            # Read after the locks: an occurrence fired on a later try (its row was held by
            # an edit) counts that wait as lateness, and its publish deadline counts from
            # the real firing.
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
                if plan.misfired or plan.skipped:
                    # Past the grace (or fire_all's cap dropping some): the metric counts
                    # the occurrence row; the line says how many missed times did not fire.
                    # Skips within the grace (a short stall) are only logged, and quietly.
                    if plan.misfired:
                        self.res.metrics.misfires.labels(plan.policy).inc()
                    self.log.bind(
                        action="misfire", trigger_id=d.trigger_id, policy=plan.policy,
                        fired=len(fired), skipped=plan.skipped, skipped_more=plan.skipped_more,
                        past_grace=plan.misfired, fire_at=str(d.fire_at),
                    ).log(
                        "WARNING" if plan.misfired else "INFO",
                        "occurrence found {}: {} fired, {}{} missed time(s) skipped",
                        "past its misfire grace" if plan.misfired else "late",
                        len(fired), plan.skipped, "+" if plan.skipped_more else "",
                    )  # fmt: skip
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
        self.background.send([job_message(event_dict(e)) for e in events])
        if self.res.tracing is not None:
            stored = self.res.clock.now()
            for e in events:
                self.res.tracing.event(e, stored)
            for e, error in broken:
                self.res.tracing.event(e, stored, error=error)
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
        return held

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


def _fire_error(exc: Exception) -> str:
    return (
        f"firing failed {MAX_FIRE_ATTEMPTS} times ({type(exc).__name__}: {exc}); the trigger "
        "will not fire again until it is edited, or paused and resumed"
    )[:500]


def _schedule_error(exc: Exception) -> str:
    return (
        f"the trigger's schedule could not be computed ({type(exc).__name__}: {exc}); "
        "it will not fire again until its config is fixed"
    )[:500]


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Scheduler(res, res.jobs).run(stop)
