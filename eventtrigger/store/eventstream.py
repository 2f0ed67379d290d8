"""Reading what changed in the event log, for the live tail (roles/api/stream.py): the
(id, updated_at) of rows changed since a point (index only), then the columns the
streams filter on, then in full only the rows some stream wants; and whether the keys the
streams were opened with still hold."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from eventtrigger.store.db import Database, Row, read_time
from eventtrigger.store.events import decode_event, in_list
from eventtrigger.store.queries import Q

CHUNK = 500  # ids per statement


async def changed(
    db: Database, since: datetime, after_id: str, limit: int
) -> list[tuple[str, datetime]]:
    """Up to `limit` (id, updated_at) of rows changed at or after `since` (past `after_id`
    at exactly `since`), oldest first."""
    async with db.connection() as tx:
        rows = await tx.fetch_all(Q["eventstream.changed"], (since, since, after_id, limit))
    found = []
    for row in rows:
        at = read_time(row["updated_at"])
        assert at is not None  # the column is NOT NULL
        found.append((str(row["id"]), at))
    return found


async def heads(db: Database, ids: Sequence[str]) -> list[Row]:
    """id, trigger_id, status, source and updated_at of the rows of `ids` still in the
    hot table (what a stream's filter needs), by primary key."""
    return await _by_id(db, "eventstream.heads", ids)


async def rows(db: Database, ids: Sequence[str]) -> list[Row]:
    """The rows of `ids` still in the hot table, decoded, oldest change first."""
    decoded = await _by_id(db, "eventstream.rows", ids)
    return sorted(decoded, key=lambda r: (r["updated_at"], r["id"]))


async def _by_id(db: Database, query: str, ids: Sequence[str]) -> list[Row]:
    """The named `{ids}` query's rows for `ids`, CHUNK ids a statement, decoded."""
    found: list[Row] = []
    async with db.connection() as tx:
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            found += await tx.fetch_all(in_list(Q[query], chunk), chunk)
    return [decode_event(r) for r in found]


async def keys_in_force(db: Database, ids: Collection[str], now: datetime) -> set[str]:
    """Those of the managed key `ids` that exist, are not revoked and have not expired."""
    if not ids:
        return set()
    wanted = sorted(ids)
    async with db.connection() as tx:
        found = await tx.fetch_all(in_list(Q["eventstream.keys"], wanted), wanted)
    held = set()
    for row in found:
        expires_at = read_time(row["expires_at"])
        if row["revoked_at"] is None and (expires_at is None or now < expires_at):
            held.add(str(row["id"]))
    return held
