"""Retention's SQL: move finished events to the archive, delete past the total window,
prune occurrences, idempotency keys and archive counts. Bounded batches, each its own
transaction (run again if it loses a lock conflict), so a pass is safe to interrupt and
to run in several processes at once (SKIP LOCKED; the deletes are idempotent).

Every change to the archive updates `event_archive_counts` in the same transaction, so
the stats can sum per-minute counts instead of counting the archive.

A pass may have a backlog to catch up (hundreds of thousands of rows after an outage), so
the caller hears from it after every batch (`more`): it beats its heartbeat there and may
end the pass (at stop); the next pass starts over from what is left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from eventtrigger.store.db import Database, Tx
from eventtrigger.store.events import in_list
from eventtrigger.store.queries import Q

BATCH = 500
# Called after each batch; False ends the pass there.
More = Callable[[], bool]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def minute_of(value: datetime) -> int:
    """The `event_archive_counts.minute` holding `value` (as SQL's TIMESTAMPDIFF(MINUTE))."""
    return int((value - EPOCH).total_seconds() // 60)


async def _batch(db: Database, select: str, args: tuple[Any, ...], steps: tuple[str, ...]) -> int:
    """One bounded batch in one transaction: `select` names up to a batch of event ids,
    then each of `steps` runs over exactly those ids; how many there were."""

    async def work(tx: Tx) -> int:
        ids = [r["id"] for r in await tx.fetch_all(Q[select], args)]
        for step in steps if ids else ():
            await tx.execute(in_list(Q[step], ids), ids)
        return len(ids)

    return await db.run(work)


async def move_batch(db: Database, before: datetime, limit: int = BATCH) -> int:
    """Copy up to `limit` finished events fired before `before` to the archive and delete
    them from the hot table, in one transaction; how many moved."""
    return await _batch(
        db,
        "retention.select_movable",
        (before, limit),
        ("retention.count_moving", "retention.copy_to_archive", "retention.delete_moved"),
    )


def go_on() -> bool:
    return True


async def drain(batch: Callable[[], Awaitable[int]], size: int, more: More) -> tuple[int, bool]:
    """Run `batch` until a short one (nothing left) or until `more` says stop; (how many
    rows in all, whether the pass may go on to its next step)."""
    total = 0
    while True:
        n = await batch()
        total += n
        if not more():  # after every batch, the last one too
            return total, False
        if n < size:
            return total, True


async def _delete_archive_batch(db: Database, before: datetime, size: int) -> int:
    return await _batch(
        db,
        "retention.select_expired_archive",
        (before, size),
        (
            "retention.uncount_expired",
            "retention.delete_attempts",
            "retention.delete_expired_archive",
        ),
    )


async def _delete_hot_batch(db: Database, before: datetime, size: int) -> int:
    """Expired events still in the hot table (never moved), with their attempts."""
    return await _batch(
        db,
        "retention.select_expired_hot",
        (before, size),
        ("retention.delete_attempts", "retention.delete_expired_hot"),
    )


async def _delete_batch(db: Database, query: str, before: datetime, size: int) -> int:
    async def work(tx: Tx) -> int:
        return await tx.execute(Q[query], (before, size))

    return await db.run(work)


async def delete_expired(
    db: Database, kept_since: datetime, *, size: int = BATCH, more: More = go_on
) -> dict[str, int]:
    """Everything past the total window, batch after batch until none is left or `more`
    says stop; counts."""

    def query(name: str) -> Callable[[], Awaitable[int]]:
        return lambda: _delete_batch(db, name, kept_since, size)

    steps: dict[str, Callable[[], Awaitable[int]]] = {
        "deleted_hot": lambda: _delete_hot_batch(db, kept_since, size),
        "deleted_archive": lambda: _delete_archive_batch(db, kept_since, size),
        "pruned_occurrences": query("retention.prune_occurrences"),
        "pruned_keys": query("retention.prune_idempotency_keys"),
    }
    done = dict.fromkeys(steps, 0)
    for name, batch in steps.items():
        done[name], onwards = await drain(batch, size, more)
        if not onwards:
            return done
    # After the archive's expired rows are gone (their minutes counted down to zero).
    await _prune_counts(db, kept_since)
    return done


async def _prune_counts(db: Database, kept_since: datetime) -> None:
    async def work(tx: Tx) -> int:
        return await tx.execute(Q["retention.prune_counts"], (minute_of(kept_since),))

    await db.run(work)
