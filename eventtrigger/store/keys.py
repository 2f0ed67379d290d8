"""Managed API keys in the database (api_keys): the I/O under domain/keys.py.

Writes take the caller's transaction (`tx`), so whatever else must commit with them (an
audit row) goes in the same `Database.run` block; reads of the auth path take a
connection of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from eventtrigger.domain.keys import StoredKey
from eventtrigger.store.db import Database, Row, Tx, read_json, read_time, write_json
from eventtrigger.store.queries import Q


def _record(row: Row) -> StoredKey:
    created = read_time(row["created_at"])
    assert created is not None
    scopes = read_json(row["scopes"])
    return StoredKey(
        id=row["id"],
        name=row["name"],
        scopes=frozenset(str(s) for s in scopes) if isinstance(scopes, list) else frozenset(),
        prefix=row["prefix"],
        created_at=created,
        expires_at=read_time(row["expires_at"]),
        last_used_at=read_time(row["last_used_at"]),
        revoked_at=read_time(row["revoked_at"]),
    )


async def insert(tx: Tx, key: StoredKey, key_hash: bytes) -> None:
    await tx.execute(
        Q["keys.insert"],
        (
            key.id,
            key.name,
            write_json(sorted(key.scopes)),
            key.prefix,
            key_hash,
            key.created_at,
            key.expires_at,
        ),
    )


async def revoke(tx: Tx, key_id: str, now: datetime) -> bool:
    """Revoke a live key; False when there is no such key (or it was revoked already)."""
    return await tx.execute(Q["keys.revoke"], (now, key_id)) > 0


async def by_hash(db: Database, key_hash: bytes) -> StoredKey | None:
    async with db.connection() as tx:
        row = await tx.fetch_one(Q["keys.select_by_hash"], (key_hash,))
    return None if row is None else _record(row)


async def live(db: Database) -> list[StoredKey]:
    """Every key not revoked (expired ones included: they are listed until revoked)."""
    async with db.connection() as tx:
        rows = await tx.fetch_all(Q["keys.select_live"])
    return [_record(r) for r in rows]


async def touch(db: Database, uses: Iterable[tuple[str, datetime]]) -> None:
    """Write a batch of (key id, last use) pairs; a later time already stored stays."""
    rows = [(at, key_id, at) for key_id, at in uses]
    if rows:
        async with db.connection() as tx:
            await tx.executemany(Q["keys.touch"], rows)


async def key_admins(db: Database, now: datetime) -> int:
    """How many usable managed keys can make keys (admin or keys:admin)."""
    async with db.connection() as tx:
        row = await tx.fetch_one(Q["keys.count_key_admins"], (now,))
    return 0 if row is None else int(row["n"])
