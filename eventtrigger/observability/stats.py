"""The snapshot of figures that need the database, refreshed on an interval.

One snapshot feeds the Prometheus gauges, `GET /api/v1/stats` and the dashboard, so they
always agree; scrapes and page loads never query the database themselves. The figures
are cluster-wide (read from the shared database), so every process reports the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from eventtrigger.domain.retention import Windows
from eventtrigger.domain.triggers import iso
from eventtrigger.observability.metrics import QUANTILES, RECENT_SECONDS, Metrics, quantiles
from eventtrigger.store.db import TRANSIENT_ERRORS, Database, read_time
from eventtrigger.store.queries import Q

REFRESH_SECONDS = 2.0


@dataclass
class Snapshot:
    as_of: datetime | None = None
    triggers: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> status -> n
    jobs: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)  # retention view -> n
    outcomes: dict[str, int] = field(default_factory=dict)  # status -> n (active window)
    fire_lateness: dict[str, float | None] = field(default_factory=dict)
    delivery_latency: dict[str, float | None] = field(default_factory=dict)
    latest_failures: list[dict[str, Any]] = field(default_factory=list)


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {str(q): None for q in QUANTILES}
    return {str(q): round(v, 6) for q, v in quantiles(values).items()}


async def take_snapshot(db: Database, windows: Windows, now: datetime) -> Snapshot:
    active_since, kept_since = windows.active_since(now), windows.kept_since(now)
    recent_since = now - timedelta(seconds=RECENT_SECONDS)
    snap = Snapshot(as_of=now)
    async with db.transaction() as tx:  # one snapshot across the hot and archive tables
        for row in await tx.fetch_all(Q["stats.triggers_by_type_status"]):
            snap.triggers.setdefault(row["type"], {})[row["status"]] = int(row["n"])
        overdue = await tx.fetch_one(Q["stats.overdue_occurrences"], (now,))
        unfinished = {
            r["status"]: int(r["n"]) for r in await tx.fetch_all(Q["stats.unfinished_events"])
        }
        snap.jobs = {
            "pending": int(overdue["n"] if overdue else 0) + sum(unfinished.values()),
            "overdue_occurrences": int(overdue["n"] if overdue else 0),
            "events_pending": unfinished.get("pending", 0),
            "events_retrying": unfinished.get("retrying", 0),
        }
        hot = await tx.fetch_one(
            Q["stats.hot_counts"], (active_since, active_since, kept_since, kept_since)
        )
        archive = await tx.fetch_one(Q["stats.archive_count"], (kept_since,))
        snap.events = {
            "active": int((hot or {}).get("active") or 0),
            "archived": int((hot or {}).get("archived") or 0) + int((archive or {}).get("n") or 0),
        }
        snap.outcomes = {s: 0 for s in ("pending", "retrying", "success", "failure")} | {
            r["status"]: int(r["n"])
            for r in await tx.fetch_all(Q["stats.outcomes"], (active_since,))
        }
        timings = await tx.fetch_all(Q["stats.recent_timings"], (recent_since,))
        failures = await tx.fetch_all(Q["stats.latest_failures"], (active_since,))
    snap.fire_lateness = _quantiles(
        [max(0, r["lateness_us"]) / 1e6 for r in timings if r["source"] == "scheduled"]
    )
    snap.delivery_latency = _quantiles(
        [r["delivery_us"] / 1e6 for r in timings if r["delivery_us"] is not None]
    )
    snap.latest_failures = [
        {
            "id": r["id"],
            "trigger_id": r["trigger_id"],
            "trigger_type": r["trigger_type"],
            "source": r["source"],
            "fired_at": iso(read_time(r["fired_at"])),  # type: ignore[arg-type]
            "attempts": int(r["attempts"]),
            "last_status_code": r["last_status_code"],
            "last_error": r["last_error"],
        }
        for r in failures
    ]
    return snap


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

    def __init__(self, db: Database, windows: Windows, metrics: Metrics) -> None:
        self.db, self.windows, self.metrics = db, windows, metrics
        self.latest = Snapshot()

    async def refresh(self, now: datetime) -> Snapshot:
        self.latest = await take_snapshot(self.db, self.windows, now)
        publish(self.latest, self.metrics)
        return self.latest

    async def run(self, clock: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh(clock.now())
            except TRANSIENT_ERRORS as exc:
                logger.bind(action="stats_failed").warning("stats refresh failed: {}", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
