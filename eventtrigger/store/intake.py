"""Events created by the API (webhook calls, test runs), many calls per transaction,
and the Idempotency-Key mappings that come with webhook calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.store.db import Database, Row, Tx
from eventtrigger.store.events import insert_events
from eventtrigger.store.queries import Q
from eventtrigger.store.triggers import Fingerprint, fingerprints


@dataclass(frozen=True)
class Key:
    """An Idempotency-Key: (scope, key) and the digest of the body it came with."""

    scope: str
    key: str
    digest: str


@dataclass(frozen=True)
class Call:
    """One event to store, with its Idempotency-Key if any, and the fingerprint of the
    trigger it was checked against when that came from a cache (None: checked in the
    database already)."""

    event: NewEvent
    key: Key | None = None
    expect: Fingerprint | None = None


# What became of a call: stored; its key was taken already; or its trigger changed since
# the check.
Intake = Literal["stored", "taken", "stale"]


async def insert(tx: Tx, calls: Sequence[Call], now: datetime) -> list[Intake]:
    """Insert the events (and their keys), in the order: stale checks, keys, events.

    A call whose trigger no longer matches its fingerprint (paused, edited, deleted,
    rotated since the cached read) stores nothing and takes no key; one whose key was
    taken already (by an earlier call, or an earlier call of this batch) stores no event.
    """
    outcome: list[Intake] = ["stored"] * len(calls)
    checked = {c.event.trigger_id for c in calls if c.expect is not None}
    if checked:
        current = await fingerprints(tx, sorted(i for i in checked if i is not None))
        for n, c in enumerate(calls):
            if c.expect is not None and current.get(c.event.trigger_id or "") != c.expect:
                outcome[n] = "stale"
    keyed = [
        (c.event, c.key) for c, o in zip(calls, outcome, strict=True) if c.key and o == "stored"
    ]
    standing: dict[tuple[str, str], str] = {}
    if keyed:
        await tx.executemany(
            Q["idempotency.insert"], [(k.scope, k.key, e.id, k.digest, now) for e, k in keyed]
        )
        pairs = ", ".join(["(%s, %s)"] * len(keyed))
        args = [part for _, k in keyed for part in (k.scope, k.key)]
        for row in await tx.fetch_all(Q["idempotency.select_standing"].format(pairs=pairs), args):
            standing[(row["scope"], row["idem_key"])] = row["event_id"]
    for n, c in enumerate(calls):
        k = c.key
        if outcome[n] == "stored" and k and standing.get((k.scope, k.key)) != c.event.id:
            outcome[n] = "taken"
    await insert_events(
        tx, [c.event for c, o in zip(calls, outcome, strict=True) if o == "stored"], now
    )
    return outcome


async def earlier(db: Database, key: Key, horizon: datetime) -> Row | None:
    """The mapping for a key used since `horizon` (an older one is removed first)."""
    async with db.connection() as tx:
        await tx.execute(Q["idempotency.delete_expired"], (key.scope, key.key, horizon))
        return await tx.fetch_one(Q["idempotency.select"], (key.scope, key.key))
