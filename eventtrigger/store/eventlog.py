"""Reading event logs: pages newest first and one event, across the hot table and the
archive (the same shape). Per-trigger counts are in aggregate.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.domain.times import FAR_FUTURE
from eventtrigger.store.db import Database, Row, read_json, read_time
from eventtrigger.store.events import decode_event
from eventtrigger.store.queries import Q
from eventtrigger.store.secrets import open_snapshot

HOT, ARCHIVE = "event_logs", "event_logs_archive"


@dataclass(frozen=True)
class EventFilter:
    trigger_id: str | None = None
    status: str | None = None
    source: str | None = None
    is_test_run: bool | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """Extra `AND` conditions (fixed fragments) and their parameters."""
        parts, args = [], []
        for column, value in (
            ("trigger_id", self.trigger_id),
            ("status", self.status),
            ("source", self.source),
            ("is_test_run", self.is_test_run),
        ):
            if value is not None:
                parts.append(f"AND {column} = %s")
                args.append(value)
        return " ".join(parts), args


async def page(
    db: Database,
    *,
    tables: tuple[str, ...],
    lower: datetime,
    upper: datetime | None,
    where: EventFilter,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Row]:
    """Up to `limit` events with lower <= fired_at < upper, newest first, after the cursor."""
    extra, extra_args = where.sql()
    at, last = after if after is not None else (None, None)
    found: dict[str, Row] = {}
    # One transaction, so both reads see one snapshot: a move committing in between can
    # neither hide an event nor show it twice (the dict is a second line of defence).
    async with db.snapshot() as tx:
        for table in tables:
            query = Q["eventlog.page"].format(table=table, where=extra)
            args = [lower, upper or FAR_FUTURE, *extra_args, at, at, at, last, limit]
            for row in await tx.fetch_all(query, args):
                found.setdefault(row["id"], row)
    rows = sorted(found.values(), key=lambda r: (r["fired_at"], r["id"]), reverse=True)
    return [decode_event(r) for r in rows[:limit]]


async def find(db: Database, event_id: str) -> Row | None:
    """One event from either table, with its request snapshot (its secrets as stored:
    never shown)."""
    async with db.connection() as tx:
        for table in (HOT, ARCHIVE):
            row = await tx.fetch_one(Q["eventlog.one"].format(table=table), (event_id,))
            if row is not None:
                return decode_event(row)
    return None


async def replay_source(db: Database, event_id: str) -> Row | None:
    """One event with the request snapshot it was sent with, from either table."""
    async with db.connection() as tx:
        for table in (HOT, ARCHIVE):
            row = await tx.fetch_one(Q["eventlog.replay_source"].format(table=table), (event_id,))
            if row is not None:
                return _replayable(db, decode_event(row))
    return None


async def replay_sources(
    db: Database, *, lower: datetime, upper: datetime, where: EventFilter, limit: int
) -> list[Row]:
    """Up to `limit` events with lower <= fired_at < upper, oldest first, with their
    request snapshots, across both tables (one snapshot, as `page`)."""
    extra, extra_args = where.sql()
    found: dict[str, Row] = {}
    async with db.snapshot() as tx:
        for table in (HOT, ARCHIVE):
            query = Q["eventlog.replay_sources"].format(table=table, where=extra)
            for row in await tx.fetch_all(query, [lower, upper, *extra_args, limit]):
                found.setdefault(row["id"], row)
    rows = sorted(found.values(), key=lambda r: (r["fired_at"], r["id"]))
    return [_replayable(db, decode_event(r)) for r in rows[:limit]]


def _replayable(db: Database, row: Row) -> Row:
    """A replay's source with its snapshot's secrets decrypted: the replay is a new event,
    whose snapshot is encrypted again under its own id."""
    row["request"] = open_snapshot(db.secrets, row["id"], row["request"])
    return row


async def attempts(db: Database, event_id: str) -> list[Row]:
    """An event's delivery attempts, oldest first (times in UTC, `request` and
    `response_headers` decoded; None for attempts stored before they were kept)."""
    async with db.connection() as tx:
        rows = await tx.fetch_all(Q["eventlog.attempts"], (event_id,))
    for row in rows:
        row["started_at"] = read_time(row["started_at"])
        row["next_attempt_at"] = read_time(row["next_attempt_at"])
        row["request"] = read_json(row["request"])
        row["response_headers"] = read_json(row["response_headers"])
    return rows
