"""The occurrence queue (trigger_schedules) as the scheduler uses it: claim ahead with a
lease in the scheduler's name, lock and fire, complete and add the next occurrence, hand
claims back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.store.db import Database, Row, Tx, read_json, read_time
from eventtrigger.store.events import in_list, insert_events
from eventtrigger.store.queries import Q


@dataclass(frozen=True)
class Due:
    """A claimed occurrence, locked for firing, with its trigger as it is now."""

    id: int
    trigger_id: str
    fire_at: datetime
    attempt_count: int  # claims so far, this one included
    trigger_type: str
    trigger_status: str
    config: dict[str, Any]
    # The current secret and, during a rotation's grace, the previous one: what
    # `request_snapshot` takes (the name predates rotation).
    signing_secret: SigningKeys
    nominal_at: datetime | None = None  # the schedule's time; fire_at adds the jitter


async def claim(
    db: Database, owner: str, now: datetime, horizon: datetime, lease_until: datetime, limit: int
) -> list[tuple[datetime, int]]:
    """Claim occurrences due before `horizon` and those whose claim expired; (fire_at, id)."""
    async with db.transaction() as tx:
        due = await tx.fetch_all(Q["schedules.select_due"], (horizon, limit))
        expired = await tx.fetch_all(Q["schedules.select_expired"], (now, limit))
        ids = list(dict.fromkeys(r["id"] for r in due + expired))
        if not ids:
            return []
        await tx.execute(in_list(Q["schedules.claim"], ids), (owner, lease_until, now, now, *ids))
        rows = await tx.fetch_all(in_list(Q["schedules.select_claimed"], ids), ids)
    return [(read_time(r["fire_at"]), int(r["id"])) for r in rows]  # type: ignore[misc]


async def lock_for_fire(tx: Tx, ids: Sequence[int], owner: str) -> list[Due]:
    """Lock the occurrences still claimed by `owner` (and their triggers), leaving out at
    once, without waiting, those whose row another transaction holds."""
    rows = await tx.fetch_all(in_list(Q["schedules.lock_for_fire"], ids), (*ids, owner))
    return [
        Due(
            id=int(r["id"]),
            trigger_id=r["trigger_id"],
            fire_at=read_time(r["fire_at"]),  # type: ignore[arg-type]
            attempt_count=int(r["attempt_count"]),
            trigger_type=r["type"],
            trigger_status=r["status"],
            config=read_json(r["config"]),
            signing_secret=SigningKeys(
                tx.secrets.open(r["signing_secret"], r["trigger_id"], "signing_secret"),
                _previous(tx, r),
                read_time(r["previous_secret_expires_at"]),
            ),
            nominal_at=read_time(r["nominal_at"]),
        )
        for r in rows
    ]


def _previous(tx: Tx, row: Row) -> str | None:
    value = row["previous_signing_secret"]
    if value is None:
        return None
    return tx.secrets.open(value, row["trigger_id"], "previous_signing_secret")


async def held_elsewhere(tx: Tx, ids: Sequence[int], owner: str) -> list[int]:
    """Of `ids` (left out by `lock_for_fire`), those still claimed by `owner`: locked by
    another transaction for now, to be tried again."""
    if not ids:
        return []
    rows = await tx.fetch_all(in_list(Q["schedules.held_elsewhere"], ids), (*ids, owner))
    return [int(r["id"]) for r in rows]


async def record_firing(
    tx: Tx,
    *,
    events: Sequence[NewEvent],
    done: Sequence[int],
    upcoming: Sequence[tuple[str, datetime, datetime]],  # (trigger id, fire_at, nominal)
    finished: Sequence[str],
    now: datetime,
) -> None:
    """The firing's writes: event rows, occurrences completed, next occurrences added,
    one-time triggers completed (multi-row statements)."""
    await insert_events(tx, events, now)
    if done:
        await tx.execute(in_list(Q["schedules.complete"], done), (now, *done))
    await tx.executemany(
        Q["triggers.insert_occurrence"],
        [(t, at, nominal, "pending", now, now) for t, at, nominal in upcoming],
    )
    if finished:
        await tx.execute(in_list(Q["schedules.complete_triggers"], finished), (now, *finished))


async def release_some(tx: Tx, ids: Sequence[int], owner: str, now: datetime) -> None:
    if ids:
        await tx.execute(in_list(Q["schedules.release_some"], ids), (now, *ids, owner))


async def release_all(db: Database, owner: str) -> None:
    """On stop: hand back every claim we hold, for another scheduler."""
    async with db.connection() as tx:
        await tx.execute(Q["schedules.release"], (owner,))
