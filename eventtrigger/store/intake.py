"""Events created by the API (webhook calls, test runs), many calls per transaction,
and the Idempotency-Key mappings that come with webhook calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.store.db import Database, Row, Tx
from eventtrigger.store.events import insert_events
from eventtrigger.store.queries import Q


@dataclass(frozen=True)
class Key:
    """An Idempotency-Key: (scope, key) and the digest of the body it came with."""

    scope: str
    key: str
    digest: str


async def insert(tx: Tx, items: Sequence[tuple[NewEvent, Key | None]], now: datetime) -> list[bool]:
    """Insert the events (and their keys); per item, False if its key was taken already
    (by an earlier call, or by an earlier item of this batch): then no event is inserted.
    """
    keyed = [(e, k) for e, k in items if k is not None]
    standing: dict[tuple[str, str], str] = {}
    if keyed:
        await tx.executemany(
            Q["idempotency.insert"], [(k.scope, k.key, e.id, k.digest, now) for e, k in keyed]
        )
        pairs = ", ".join(["(%s, %s)"] * len(keyed))
        args = [part for _, k in keyed for part in (k.scope, k.key)]
        for row in await tx.fetch_all(Q["idempotency.select_standing"].format(pairs=pairs), args):
            standing[(row["scope"], row["idem_key"])] = row["event_id"]
    won = [k is None or standing.get((k.scope, k.key)) == e.id for e, k in items]
    await insert_events(tx, [e for (e, _), ok in zip(items, won, strict=True) if ok], now)
    return won


async def earlier(db: Database, key: Key, horizon: datetime) -> Row | None:
    """The mapping for a key used since `horizon` (an older one is removed first)."""
    async with db.connection() as tx:
        await tx.execute(Q["idempotency.delete_expired"], (key.scope, key.key, horizon))
        return await tx.fetch_one(Q["idempotency.select"], (key.scope, key.key))
