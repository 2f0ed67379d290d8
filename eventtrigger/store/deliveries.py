"""Event rows as the delivery queue: worker leases, parking, batched outcomes, and
re-publishing.

A worker owns a job while its name is in `lease_owner` and `next_attempt_at` (the lease
expiry) lies ahead; it renews the lease while it holds the job. Other workers leave a
leased row alone; the re-publisher takes only rows whose deadline passed. A worker parks
a job its host cannot take soon: no lease, `publish_due` set, due when the host should
have room (`parked` tells the worker that takes it back that it waited its turn). The
attempt number guards every outcome, so a duplicate job can never count an attempt
twice, and parking never changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.store.db import Row, Tx, read_time, write_json
from eventtrigger.store.events import decode_event, in_list
from eventtrigger.store.queries import Q

CHUNK = 1000  # ids per statement, to keep IN lists and packets small


@dataclass(frozen=True)
class Attempt:
    event_id: str
    attempt: int  # 1-based number of this attempt
    status: str  # success | retrying | failure
    status_code: int | None
    error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    # For the attempt history (None: not recorded there, e.g. an attempt never made).
    started_at: datetime | None = None
    duration_ms: int = 0
    response_body: str | None = None
    # What was sent ({"method", "url", "headers", "body_sha256"}) and the response's
    # headers, already bounded and masked (delivery.py); None: none made, or no answer.
    request: dict[str, Any] | None = None
    response_headers: dict[str, str] | None = None


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


def claimable(row: Row | None, attempt: int, owner: str, now: datetime) -> bool:
    """Whether job `attempt` of this row is ours to deliver (pure).

    Not if the event finished, or the row is not at the attempt before this one (a
    duplicate or a stale job), or another worker holds an unexpired lease on it.
    """
    if row is None or row["status"] not in ("pending", "retrying"):
        return False
    if int(row["attempts"]) != attempt - 1:
        return False
    holder, expiry = row["lease_owner"], read_time(row["next_attempt_at"])
    return holder is None or holder == owner or expiry is None or expiry <= now


async def claim(
    tx: Tx, attempts: dict[str, int], owner: str, now: datetime, lease_until: datetime
) -> set[str]:
    """Of the jobs (event id -> attempt number), lease those still ours to deliver."""
    return set(await claim_jobs(tx, attempts, owner, now, lease_until))


async def claim_jobs(
    tx: Tx, attempts: dict[str, int], owner: str, now: datetime, lease_until: datetime
) -> dict[str, bool]:
    """Like `claim`; for each job leased, whether it comes back from being parked."""
    ids = sorted(attempts)
    rows: dict[str, Row] = {}
    for chunk in _chunks(ids):
        for row in await tx.fetch_all(in_list(Q["deliveries.lock"], chunk), chunk):
            rows[row["id"]] = row
    todo = sorted(i for i in ids if claimable(rows.get(i), attempts[i], owner, now))
    for chunk in _chunks(todo):
        await tx.execute(in_list(Q["deliveries.take_lease"], chunk), (owner, lease_until, *chunk))
    return {i: bool(rows[i]["parked"]) for i in todo}


async def requeue(tx: Tx, ids: Sequence[str], owner: str, at: datetime) -> None:
    """Hand leased jobs back, to be published again at `at` (unless redelivered first)."""
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.requeue"], chunk), (at, owner, *chunk))


async def park(tx: Tx, due: dict[str, datetime], owner: str) -> None:
    """Park leased jobs (event id -> due time): no lease, to be published when due. The
    attempt count stays as it is."""
    ids = sorted(due)
    for chunk in _chunks(ids):
        selects = " UNION ALL ".join(
            [Q["deliveries.park_row"]] + [Q["deliveries.park_more"]] * (len(chunk) - 1)
        )
        query = Q["deliveries.park"].format(rows=selects, ids=", ".join(["%s"] * len(chunk)))
        args: list[object] = []
        for i in chunk:
            args += [i, due[i]]
        await tx.execute(query, (*args, *chunk, owner))


async def renew(tx: Tx, ids: Sequence[str], owner: str, lease_until: datetime) -> None:
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.renew_leases"], chunk), (lease_until, owner, *chunk))


async def release(tx: Tx, ids: Sequence[str], owner: str) -> None:
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.release"], chunk), (owner, *chunk))


async def record_attempts(tx: Tx, attempts: Sequence[Attempt], now: datetime) -> list[bool]:
    """Store outcomes in two statements of the caller's transaction; per attempt, False if
    it was already recorded (a duplicate, or the event finished meanwhile).

    The rows are locked first (in id order, as claims lock them), so which outcomes pass
    the attempt-number guard is known before the one UPDATE that stores them.
    """
    latest = {a.event_id: a for a in sorted(attempts, key=lambda a: a.attempt)}
    ids = sorted(latest)
    rows: dict[str, Row] = {}
    for chunk in _chunks(ids):
        for row in await tx.fetch_all(in_list(Q["deliveries.lock"], chunk), chunk):
            rows[row["id"]] = row
    passing = [
        latest[i]
        for i in ids
        if i in rows
        and rows[i]["status"] in ("pending", "retrying")
        and int(rows[i]["attempts"]) == latest[i].attempt - 1
    ]
    for start in range(0, len(passing), CHUNK):
        chunk_rows = passing[start : start + CHUNK]
        selects = " UNION ALL ".join(
            [Q["deliveries.outcome_row"]] + [Q["deliveries.outcome_more"]] * (len(chunk_rows) - 1)
        )
        query = Q["deliveries.record_attempts"].format(
            rows=selects, ids=", ".join(["%s"] * len(chunk_rows))
        )
        args: list[object] = []
        for a in chunk_rows:
            args += [
                a.event_id, a.status, a.attempt, a.status_code, a.error, a.delivered_at,
                a.next_attempt_at,
            ]  # fmt: skip
        await tx.execute(query, (*args, now, *(a.event_id for a in chunk_rows)))
        await _insert_history(tx, [a for a in chunk_rows if a.started_at is not None])
    stored = {(a.event_id, a.attempt) for a in passing}
    return [(a.event_id, a.attempt) in stored for a in attempts]


async def _insert_history(tx: Tx, attempts: Sequence[Attempt]) -> None:
    """The attempts' history rows: one multi-row INSERT next to the outcome UPDATE, in
    its transaction, so a batch costs one statement more, not one per attempt."""
    if not attempts:
        return
    values = ", ".join([Q["deliveries.history_values"]] * len(attempts))
    args: list[object] = []
    for a in attempts:
        args += [
            a.event_id, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error,
            a.response_body, a.next_attempt_at,
            None if a.request is None else write_json(a.request),
            None if a.response_headers is None else write_json(a.response_headers),
        ]  # fmt: skip
    await tx.execute(Q["deliveries.insert_history"].format(values=values), args)


async def owe_dead_letters(tx: Tx, ids: Sequence[str], due_at: datetime) -> None:
    """Final failures just stored (same transaction): their dead-letter copies are owed,
    by the worker at once and, if it has not sent them by `due_at`, by the re-publisher."""
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.owe_dead_letters"], chunk), (due_at, *chunk))


async def dead_letters_sent(tx: Tx, ids: Sequence[str]) -> None:
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.dead_letters_sent"], chunk), chunk)


async def take_dead_letters(tx: Tx, now: datetime, again_at: datetime, limit: int) -> list[Row]:
    """Lock failed events whose dead-letter copy is owed and due, and push it to `again_at`
    (sent again then if this publish fails too)."""
    rows = await tx.fetch_all(Q["deliveries.select_dead_letters"], (now, limit))
    if rows:
        ids = [r["id"] for r in rows]
        await tx.execute(in_list(Q["deliveries.postpone_dead_letters"], ids), (again_at, *ids))
    return [decode_event(r) for r in rows]


async def mark_failed(tx: Tx, failed: Sequence[tuple[NewEvent, str]], now: datetime) -> None:
    """Make just-inserted events final failures with the given error (never published)."""
    for event, error in failed:
        await tx.execute(Q["deliveries.mark_failed"], (error, now, event.id))


async def select_due(tx: Tx, now: datetime, limit: int) -> list[Row]:
    """Lock unfinished events whose deadline passed, the earliest first, both statuses
    together (with `publish_due`, `parked` and `lag_mark`)."""
    rows = await tx.fetch_all(Q["deliveries.select_due"], (now, limit))
    return [decode_event(r) for r in rows]


async def set_deadline(tx: Tx, ids: Sequence[str], deadline: datetime) -> None:
    """The rows' jobs are being published: `deadline` is that publish's (no lease: whichever
    worker gets the job takes it)."""
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.set_deadline"], chunk), (deadline, *chunk))


async def postpone(tx: Tx, ids: Sequence[str], until: datetime, mark: int) -> None:
    """Rows whose jobs are queued behind consumer lag: looked at again at `until`; `mark`
    (the partition's end offset now) is kept from the first postponement on."""
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.postpone"], chunk), (until, mark, *chunk))


async def publish_failed(tx: Tx, ids: Sequence[str]) -> None:
    """Their publish failed: owed again when their deadline comes, lag or not."""
    for chunk in _chunks(sorted(ids)):
        await tx.execute(in_list(Q["deliveries.publish_failed"], chunk), chunk)


async def take_due(tx: Tx, now: datetime, deadline: datetime, limit: int) -> list[Row]:
    """Lock unfinished events whose deadline passed and push their deadline to `deadline`
    (no lease: whichever worker gets the re-published job takes it)."""
    rows = await select_due(tx, now, limit)
    await set_deadline(tx, [r["id"] for r in rows], deadline)
    return rows
