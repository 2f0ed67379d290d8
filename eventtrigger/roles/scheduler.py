"""The scheduler role: turns due occurrences into events and jobs, on time.

Loop: claim occurrences due within LOOKAHEAD (SKIP LOCKED, a lease in our name), wait in
memory until each one's exact fire time, then in one transaction re-check the claim under
lock, create the events, complete the occurrences and insert the next ones; then publish
the jobs. The same loop re-publishes events whose deadline passed (never published,
lost, or a retry now due). Any number of schedulers may run: the row locks, the lease
owner check and UNIQUE(occurrence_id) make a second firing of one occurrence impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from eventtrigger.bus import Publisher
from eventtrigger.clock import sleep_until
from eventtrigger.domain.jobs import (
    NewEvent,
    event_dict,
    job_message,
    request_snapshot,
    scheduled_time,
)
from eventtrigger.domain.triggers import next_fire
from eventtrigger.ids import new_id
from eventtrigger.resources import Resources
from eventtrigger.store.db import TRANSIENT_ERRORS, read_json, read_time, retry_conflicts
from eventtrigger.store.events import in_list, insert_events, take_due
from eventtrigger.store.queries import Q

LOOKAHEAD = timedelta(seconds=2)  # claim this far ahead, so firing is a local timer
POLL_SECONDS = 0.25
CLAIM_LIMIT = 2000
REPUBLISH_LIMIT = 500


class Scheduler:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.log = logger.bind(role="scheduler")
        self._timers: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        self.log.bind(action="role_started").info("scheduler {} started", self.owner)
        # Re-publishing has its own loop: a slow or unreachable Kafka must never delay
        # claiming, which is what keeps firings on time.
        republisher = asyncio.create_task(self._republish_loop(stop), name="republisher")
        try:
            while not stop.is_set():
                self.res.health.beat("scheduler")
                try:
                    await self._tick(stop)
                except TRANSIENT_ERRORS as exc:
                    self.log.bind(action="db_error").warning("scheduler tick failed: {}", exc)
                if republisher.done():
                    republisher.result()  # a crashed loop takes the role down, loudly
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        finally:
            republisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await republisher
            await self._release()

    async def _tick(self, stop: asyncio.Event) -> None:
        now = self.res.clock.now()
        for fire_at, ids in (await self._claim(now)).items():
            task = asyncio.create_task(self._fire_when_due(fire_at, ids, stop))
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)

    async def _republish_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._republish(self.res.clock.now())
            except TRANSIENT_ERRORS as exc:
                self.log.bind(action="db_error").warning("re-publish failed: {}", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)

    async def _claim(self, now: datetime) -> dict[datetime, list[int]]:
        """Claim due and abandoned occurrences; grouped by fire time."""
        lease_until = now + LOOKAHEAD + self.res.settings.recovery_after
        async with self.res.db.transaction() as tx:
            due = await tx.fetch_all(Q["schedules.select_due"], (now + LOOKAHEAD, CLAIM_LIMIT))
            expired = await tx.fetch_all(Q["schedules.select_expired"], (now, CLAIM_LIMIT))
            ids = list(dict.fromkeys(r["id"] for r in due + expired))
            if not ids:
                return {}
            await tx.execute(
                in_list(Q["schedules.claim"], ids), (self.owner, lease_until, now, now, *ids)
            )
            rows = await tx.fetch_all(in_list(Q["schedules.select_claimed"], ids), ids)
        groups: dict[datetime, list[int]] = defaultdict(list)
        for row in rows:
            fire_at = read_time(row["fire_at"])
            assert fire_at is not None
            groups[fire_at].append(row["id"])
        self.log.bind(action="claimed", count=len(ids)).debug("claimed {} occurrence(s)", len(ids))
        return groups

    async def _fire_when_due(self, fire_at: datetime, ids: list[int], stop: asyncio.Event) -> None:
        if not await sleep_until(self.res.clock, fire_at, stop):
            return  # stopping: _release hands the claim back
        try:
            await retry_conflicts(lambda: self._fire(ids))
        except TRANSIENT_ERRORS as exc:
            # The claim stays ours until its lease expires; then any scheduler retries it.
            self.log.bind(action="fire_failed").warning("firing {} failed: {}", ids, exc)

    async def _fire(self, ids: list[int]) -> None:
        now = self.res.clock.now()
        deadline = now + self.res.settings.recovery_after
        events: list[NewEvent] = []
        next_rows: list[tuple[str, datetime, str, datetime, datetime]] = []
        finished: list[str] = []
        async with self.res.db.transaction() as tx:
            rows = await tx.fetch_all(
                in_list(Q["schedules.lock_for_fire"], ids), (*ids, self.owner)
            )
            if not rows:
                return
            for row in rows:
                if row["status"] != "active":
                    continue
                config = read_json(row["config"])
                fire_at = read_time(row["fire_at"])
                assert fire_at is not None
                events.append(
                    NewEvent(
                        id=new_id(now),
                        trigger_id=row["trigger_id"],
                        trigger_type=row["type"],
                        source="scheduled",
                        scheduled_at=fire_at,
                        fired_at=now,
                        payload=config.get("payload"),
                        request=request_snapshot(config, row["signing_secret"]),
                        next_attempt_at=deadline,
                        occurrence_id=row["id"],
                    )
                )
                # After a late firing, continue from the next future occurrence (no burst).
                upcoming = next_fire(row["type"], config, max(fire_at, now))
                if upcoming is None:
                    finished.append(row["trigger_id"])
                else:
                    next_rows.append((row["trigger_id"], upcoming, "pending", now, now))
            await insert_events(tx, events, now)
            done = [r["id"] for r in rows]
            await tx.execute(in_list(Q["schedules.complete"], done), (now, *done))
            await tx.executemany(Q["triggers.insert_occurrence"], next_rows)
            if finished:
                await tx.execute(
                    in_list(Q["schedules.complete_triggers"], finished), (now, *finished)
                )
        for e in events:
            self.log.bind(
                action="fired",
                trigger_id=e.trigger_id,
                event_id=e.id,
                attempt=1,
                lateness_ms=round((now - e.scheduled_at).total_seconds() * 1000, 1),
            ).info("fired")
        await self._publish([job_message(event_dict(e)) for e in events], "published")

    async def _republish(self, now: datetime) -> None:
        deadline = now + self.res.settings.recovery_after
        async with self.res.db.transaction() as tx:
            rows = await take_due(tx, now, deadline, REPUBLISH_LIMIT)
        if rows:
            await self._publish([job_message(r) for r in rows], "republished")

    async def _publish(self, messages: list[dict[str, Any]], action: str) -> None:
        if not await self.publisher.publish(messages):
            return
        published_at = self.res.clock.now()
        for m in messages:
            if action == "published":
                lateness = (published_at - scheduled_time(m)).total_seconds()
                self.res.metrics.observe_lateness(max(0.0, lateness))
            self.log.bind(
                action=action,
                trigger_id=m["trigger_id"],
                event_id=m["event_id"],
                attempt=m["attempt"],
            ).info(action)

    async def _release(self) -> None:
        """On stop: hand back claims we hold but did not fire, for another scheduler."""
        for task in list(self._timers):
            task.cancel()
        with contextlib.suppress(*TRANSIENT_ERRORS):
            async with self.res.db.connection() as tx:
                await tx.execute(Q["schedules.release"], (self.owner,))


async def run(res: Resources, stop: asyncio.Event) -> None:
    await Scheduler(res, res.jobs).run(stop)
