"""The snapshot of figures that need the database, refreshed on an interval.

One snapshot feeds the Prometheus gauges, `GET /api/v1/stats` and the dashboard, so they
always agree; scrapes and page loads never query the database themselves. The figures
are cluster-wide (read from the shared database), so every process reports the same.

The reading itself, and why it does not grow with history, is in `store/stats.py`. The
count of the hot table still grows with the traffic of the last two hours, and the count
of triggers by type and status with the triggers stored (an index scan, 1,000,000
entries in bench S6), so the keeper redoes these counts only as often as keeps them under a
tenth of its time (`RECOUNT_SHARE`); the cheap figures (queue depth, overdue
occurrences, recent timings) are refreshed every time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from loguru import logger

from eventtrigger.clock import Clock, wait_stop
from eventtrigger.domain.retention import Windows
from eventtrigger.observability.metrics import Metrics
from eventtrigger.store.db import TRANSIENT_ERRORS, Database
from eventtrigger.store.stats import Snapshot, take_snapshot

REFRESH_SECONDS = 2.0
# The counts that grow with what is stored (triggers by type and status, active and
# archived events, outcomes) may take at most this share of the keeper's time: counts
# that took 0.3 s wait 3 s before the next ones.
RECOUNT_SHARE = 0.1


def publish(snap: Snapshot, metrics: Metrics) -> None:
    """Set the database-derived gauges from a snapshot."""
    metrics.triggers.clear()
    for kind, statuses in snap.triggers.items():
        for status, n in statuses.items():
            metrics.triggers.labels(kind, status).set(n)
    metrics.jobs_pending.set(snap.jobs.get("pending", 0))
    for view in ("active", "archived"):
        metrics.events.labels(view).set(snap.events.get(view, 0))


class StatsKeeper:
    """Holds the latest snapshot; its loop refreshes it until `stop` is set."""

    def __init__(
        self,
        db: Database,
        windows: Windows,
        metrics: Metrics,
        stopwatch: Callable[[], float] = time.perf_counter,  # seconds; tests pass their own
    ) -> None:
        self.db, self.windows, self.metrics = db, windows, metrics
        self.latest = Snapshot()
        self._stopwatch = stopwatch
        self._recount_at = 0.0  # stopwatch time the window counts are next due

    async def refresh(self, now: datetime) -> Snapshot:
        started = self._stopwatch()
        recount = started >= self._recount_at or self.latest.as_of is None
        self.latest = await take_snapshot(
            self.db, self.windows, now, None if recount else self.latest
        )
        if recount:
            took = self._stopwatch() - started
            self._recount_at = started + took / RECOUNT_SHARE
        publish(self.latest, self.metrics)
        return self.latest

    async def run(self, clock: Clock, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh(clock.now())
            except TRANSIENT_ERRORS as exc:
                logger.bind(action="stats_failed").warning("stats refresh failed: {}", exc)
            if await wait_stop(stop, REFRESH_SECONDS):
                return
