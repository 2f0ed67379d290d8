"""The re-publisher: sends again the jobs whose row says they are owed.

An event row whose deadline (`next_attempt_at`) has passed while it is unfinished is
owed a job: it was never published, its message was lost, the worker that leased it
died, or it is a retry whose backoff has elapsed. Dead-letter copies still owed once due
are sent the same way. It runs as a loop of the scheduler role, apart from claiming and
firing, so a slow or unreachable Kafka never delays a firing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from loguru import logger

from eventtrigger.bus import Publisher
from eventtrigger.clock import wait_stop
from eventtrigger.domain.jobs import dead_letter_message, job_message, scheduled_time
from eventtrigger.resources import Resources
from eventtrigger.store import deliveries
from eventtrigger.store.db import TRANSIENT_ERRORS

POLL_SECONDS = 0.25
REPUBLISH_LIMIT = 500


def observe_lateness(res: Resources, messages: list[dict[str, Any]]) -> float:
    """Scheduled time to this publish, once per published first attempt of a scheduled
    firing (a re-publish after a crash or a lost message too: that lateness is the one
    that matters). Retries are left out, their scheduled time is the firing's, and so
    are webhook calls and test runs, which have no schedule. The worst, in s."""
    published_at = res.clock.now()
    worst = 0.0
    for m in messages:
        if m["attempt"] != 1 or m["source"] != "scheduled":
            continue
        lateness = max(0.0, (published_at - scheduled_time(m)).total_seconds())
        res.metrics.observe_lateness(lateness)
        worst = max(worst, lateness)
    return worst


class Republisher:
    def __init__(self, res: Resources, publisher: Publisher) -> None:
        self.res = res
        self.publisher = publisher
        self.log = logger.bind(role="scheduler")

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                await self._republish(self.res.clock.now())
                await self._republish_dead_letters(self.res.clock.now())
            except TRANSIENT_ERRORS as exc:
                self.log.bind(action="db_error").warning("re-publish failed: {}", exc)
            if await wait_stop(stop, POLL_SECONDS):
                return

    async def _republish(self, now: datetime) -> None:
        deadline = now + self.res.settings.recovery_after
        async with self.res.db.transaction() as tx:
            rows = await deliveries.take_due(tx, now, deadline, REPUBLISH_LIMIT)
        messages = [job_message(r) for r in rows]
        if messages and await self.publisher.publish(messages):
            observe_lateness(self.res, messages)
            for m in messages:
                self.log.bind(
                    action="republished", trigger_id=m["trigger_id"], event_id=m["event_id"],
                    attempt=m["attempt"],
                ).info("republished")  # fmt: skip

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
