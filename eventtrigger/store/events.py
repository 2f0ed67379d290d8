"""Event rows: created with their firing (the outbox), re-published when their deadline
passes, and updated by each delivery attempt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.store.db import Row, Tx, read_json, read_time, write_json
from eventtrigger.store.queries import Q


def in_list(query: str, ids: Sequence[Any]) -> str:
    """Expand `{ids}` in a named query to one placeholder per id."""
    return query.format(ids=", ".join(["%s"] * len(ids)))


async def insert_events(tx: Tx, events: Sequence[NewEvent], now: datetime) -> None:
    await tx.executemany(
        Q["events.insert"],
        [
            (
                e.id,
                e.trigger_id,
                e.trigger_type,
                e.occurrence_id,
                e.source,
                e.is_test_run,
                e.note,
                e.scheduled_at,
                e.fired_at,
                write_json(e.payload),
                write_json(e.request),
                "pending",
                0,
                e.next_attempt_at,
                now,
                now,
            )
            for e in events
        ],
    )


_JSON_COLUMNS = ("payload", "request")
_TIME_COLUMNS = ("scheduled_at", "fired_at", "delivered_at", "created_at", "updated_at")


def decode_event(row: Row) -> Row:
    """An event row as read: JSON decoded, times in UTC, the flag a bool (the columns
    present in `row`, whichever query selected them)."""
    for key in _JSON_COLUMNS:
        if key in row:
            row[key] = read_json(row[key])
    for key in _TIME_COLUMNS:
        if key in row:
            row[key] = read_time(row[key])
    if "is_test_run" in row:
        row["is_test_run"] = bool(row["is_test_run"])
    return row


async def take_due(tx: Tx, now: datetime, deadline: datetime, limit: int) -> list[Row]:
    """Lock unfinished events whose deadline passed and push their deadline to `deadline`."""
    rows = await tx.fetch_all(Q["events.select_due"], (now, limit))
    if rows:
        ids = [r["id"] for r in rows]
        await tx.execute(in_list(Q["events.set_deadline"], ids), (deadline, *ids))
    return [decode_event(r) for r in rows]


@dataclass(frozen=True)
class Attempt:
    event_id: str
    attempt: int  # 1-based number of this attempt
    status: str  # success | retrying | failure
    status_code: int | None
    error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None


async def claim_for_delivery(tx: Tx, attempts: dict[str, int], deadline: datetime) -> set[str]:
    """Of the jobs (event id -> attempt number) in a batch, those still to be done.

    A job is done already if its event finished or recorded that attempt (a duplicate or a
    redelivery); rows another worker holds right now are skipped (SKIP LOCKED). Those we
    take get `deadline`, so the scheduler does not re-publish them while we deliver.
    """
    ids = list(attempts)
    rows = await tx.fetch_all(in_list(Q["events.select_for_delivery"], ids), ids)
    todo = {
        r["id"]
        for r in rows
        if r["status"] in ("pending", "retrying") and int(r["attempts"]) == attempts[r["id"]] - 1
    }
    if todo:
        await tx.execute(in_list(Q["events.set_deadline"], list(todo)), (deadline, *todo))
    return todo


async def record_attempt(tx: Tx, a: Attempt, now: datetime) -> bool:
    """Store one attempt's outcome; False if it was already recorded (a duplicate)."""
    changed = await tx.execute(
        Q["events.record_attempt"],
        (
            a.status,
            a.attempt,
            a.status_code,
            a.error,
            a.delivered_at,
            a.next_attempt_at,
            now,
            a.event_id,
            a.attempt - 1,
        ),
    )
    return changed == 1
