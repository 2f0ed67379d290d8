"""Event rows: inserted with their firing (the outbox), and decoded as read. Leases,
re-publishing and outcomes are in deliveries.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.store.db import Row, Tx, read_json, read_time, write_json
from eventtrigger.store.queries import Q
from eventtrigger.store.secrets import seal_snapshot


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
                e.replay_of,
                e.scheduled_at,
                e.fired_at,
                write_json(e.payload),
                # Its secrets encrypted under the event id (with EVENTTRIGGER_SECRET_KEY).
                write_json(seal_snapshot(tx.secrets, e.id, e.request)),
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
