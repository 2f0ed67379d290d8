"""The audit trail's I/O: a row written in the caller's transaction, a page read, old
rows pruned. What goes in a row, and how a page is asked for, is `domain/audit.py`.

`record` takes the caller's `Tx`, never a connection of its own: the row commits with the
change it describes or not at all. It makes the row's id, as every id here, from the
entry's time (time-ordered, unguessable)."""

from __future__ import annotations

from datetime import datetime

from eventtrigger.domain.audit import AuditEntry, AuditQuery, audit_entry
from eventtrigger.ids import new_id
from eventtrigger.store.db import Database, Row, Tx, read_json, read_time, write_json
from eventtrigger.store.queries import Q

__all__ = ["AuditEntry", "audit_entry", "page", "prune", "record"]


async def record(tx: Tx, entry: AuditEntry) -> None:
    """Write `entry` in `tx` (the transaction of the change it records)."""
    await tx.execute(
        Q["audit.insert"],
        (
            new_id(entry.at),
            entry.at,
            entry.key_id,
            entry.key_name,
            entry.action,
            entry.target_id,
            entry.request_id,
            write_json(list(entry.fields)),
        ),
    )


async def page(db: Database, query: AuditQuery) -> list[Row]:
    """Up to `query.limit + 1` rows newest first (the extra one says there is more)."""
    at = query.before_at
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            Q["audit.page"],
            (
                query.target_id,
                query.target_id,
                query.key_id,
                query.key_id,
                at,
                at,
                at,
                query.before_id,
                query.limit + 1,
            ),
        )
    for row in rows:
        row["at"] = read_time(row["at"])
        row["fields"] = read_json(row["fields"])
    return rows


async def prune(db: Database, before: datetime, size: int) -> int:
    """Delete up to `size` rows written before `before`, oldest first; how many."""

    async def work(tx: Tx) -> int:
        return await tx.execute(Q["retention.prune_audit"], (before, size))

    return await db.run(work)
