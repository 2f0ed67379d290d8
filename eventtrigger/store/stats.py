"""The figures that need the database, read in one snapshot (the SQL is `stats.sql`).

The cost does not grow with history: the archive is never counted row by row. Retention
keeps per-minute counts of it (`event_archive_counts`, updated in the transaction that
moves or deletes rows), so its size is a sum over at most one row per minute of the
total window, plus an exact count of the one minute the window's edge cuts through.
Counters for the hot table would need every writer (API, scheduler, worker) to keep
them; it holds little more than the active window, so it is counted over index ranges.
The counts that grow with what is stored can be carried over from the previous snapshot
(`previous`); `observability/stats.py` decides how often they are redone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventtrigger.domain.retention import Windows
from eventtrigger.domain.times import FAR_FUTURE, iso
from eventtrigger.observability.metrics import QUANTILES, RECENT_SECONDS, quantiles
from eventtrigger.store.db import Database, Tx, read_time
from eventtrigger.store.queries import Q
from eventtrigger.store.retention import EPOCH, minute_of


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


async def _count(tx: Tx, query: str, args: tuple[object, ...]) -> int:
    row = await tx.fetch_one(Q[query], args)
    return int((row or {}).get("n") or 0)


async def _archive_counts(tx: Tx, active_since: datetime, kept_since: datetime) -> tuple[int, int]:
    """(archive rows inside the active window, archive rows in the archived window)."""
    edge_end = EPOCH + timedelta(minutes=minute_of(kept_since) + 1)
    kept = await _count(tx, "stats.archive_range", (kept_since, edge_end))
    kept += await _count(tx, "stats.archive_minutes", (minute_of(kept_since) + 1,))
    active = await _count(tx, "stats.archive_range", (active_since, FAR_FUTURE))
    return active, kept - active


async def take_snapshot(
    db: Database, windows: Windows, now: datetime, previous: Snapshot | None = None
) -> Snapshot:
    """Every figure as of `now`; with `previous`, the counts that grow with what is stored
    (triggers, events, outcomes) are carried over from it instead of counted again."""
    active_since, kept_since = windows.active_since(now), windows.kept_since(now)
    recent_since = now - timedelta(seconds=RECENT_SECONDS)
    snap = Snapshot(as_of=now)
    async with db.snapshot() as tx:  # one instant across the hot table, archive and counts
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
        if previous is not None:
            snap.triggers = previous.triggers
            snap.events, snap.outcomes = previous.events, previous.outcomes
        else:
            for row in await tx.fetch_all(Q["stats.triggers_by_type_status"]):
                snap.triggers.setdefault(row["type"], {})[row["status"]] = int(row["n"])
            hot = await tx.fetch_one(
                Q["stats.hot_counts"], (active_since, active_since, kept_since, kept_since)
            )
            archive_active, archive_archived = await _archive_counts(tx, active_since, kept_since)
            snap.events = {
                "active": int((hot or {}).get("active") or 0) + archive_active,
                "archived": int((hot or {}).get("archived") or 0) + archive_archived,
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
