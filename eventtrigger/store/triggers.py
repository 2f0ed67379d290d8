"""Trigger persistence: every write that touches a trigger and its occurrences is one
transaction, so a trigger is never saved without its next occurrence (or vice versa).
Writes go through `Database.run`, so a lost lock race is run again, not answered 503."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventtrigger.clock import Clock
from eventtrigger.domain.audit import AuditEntry
from eventtrigger.domain.policies import fire_time
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.domain.triggers import PatchPlan
from eventtrigger.store import audit as audit_log
from eventtrigger.store import autopause
from eventtrigger.store.db import Database, Row, Tx, read_json, read_time, write_json
from eventtrigger.store.events import in_list
from eventtrigger.store.queries import Q
from eventtrigger.store.secrets import open_trigger_row, rotate_trigger_secret, seal_trigger


@dataclass(frozen=True)
class TriggerRecord:
    id: str
    name: str
    type: str
    status: str
    config: dict[str, Any]
    signing_secret: str
    webhook_token: str | None  # the webhook URL's secret; None for scheduled types
    previous_signing_secret: str | None
    previous_secret_expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    next_fire_at: datetime | None
    paused_reason: str | None = None  # why the platform paused it (auto-pause); else None

    @property
    def signing(self) -> SigningKeys:
        """What a firing's snapshot signs with (the previous secret only during its grace)."""
        return SigningKeys(
            self.signing_secret, self.previous_signing_secret, self.previous_secret_expires_at
        )


# What a webhook call depends on beyond the trigger's id: a call checked against a cached
# record is stored only if these are unchanged (status, version, URL token, secrets).
Fingerprint = tuple[str, int, str | None, str, str | None, datetime | None]


def fingerprint(record: TriggerRecord) -> Fingerprint:
    return (
        record.status,
        record.version,
        record.webhook_token,
        record.signing_secret,
        record.previous_signing_secret,
        record.previous_secret_expires_at,
    )


async def fingerprints(tx: Tx, ids: Sequence[str]) -> dict[str, Fingerprint]:
    """The current fingerprint of each of these triggers that still exists."""
    found = await tx.fetch_all(in_list(Q["triggers.select_fingerprints"], ids), list(ids))
    rows = [open_trigger_row(tx.secrets, r) for r in found]
    return {
        row["id"]: (
            row["status"],
            int(row["version"]),
            row["webhook_token"],
            row["signing_secret"],
            row["previous_signing_secret"],
            read_time(row["previous_secret_expires_at"]),
        )
        for row in rows
    }


def _record(row: Row) -> TriggerRecord:
    created = read_time(row["created_at"])
    updated = read_time(row["updated_at"])
    assert created is not None and updated is not None
    return TriggerRecord(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        status=row["status"],
        config=read_json(row["config"]),
        signing_secret=row["signing_secret"],
        webhook_token=row["webhook_token"],
        previous_signing_secret=row["previous_signing_secret"],
        previous_secret_expires_at=read_time(row["previous_secret_expires_at"]),
        version=int(row["version"]),
        created_at=created,
        updated_at=updated,
        next_fire_at=read_time(row["next_fire_at"]),
        paused_reason=row.get("paused_reason"),
    )


class TriggerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        trigger_id: str,
        name: str,
        kind: str,
        status: str,
        config: dict[str, Any],
        signing_secret: str,
        first_fire: datetime | None,
        now: datetime,
        webhook_token: str | None = None,  # a webhook trigger's URL token
        audit: AuditEntry | None = None,  # the change's audit row, written with it
    ) -> TriggerRecord:

        async def work(tx: Tx) -> TriggerRecord | None:
            await tx.execute(
                Q["triggers.insert"],
                (trigger_id, name, kind, status, write_json(config),
                 seal_trigger(tx.secrets, trigger_id, "signing_secret", signing_secret),
                 webhook_token, now, now),
            )  # fmt: skip
            if first_fire is not None and status == "active":
                await add_occurrence(tx, trigger_id, first_fire, now, config)
            if audit is not None:
                await audit_log.record(tx, audit)
            return await _select(tx, trigger_id)

        record = await self.db.run(work)
        assert record is not None
        return record

    async def get(self, trigger_id: str) -> TriggerRecord | None:
        async with self.db.connection() as tx:
            return await _select(tx, trigger_id)

    async def get_by_token(self, token: str) -> TriggerRecord | None:
        """The trigger whose webhook URL ends in `token` (never log the token)."""
        async with self.db.connection() as tx:
            row = await tx.fetch_one(Q["triggers.select_by_token"], (token,))
        return None if row is None else _record(open_trigger_row(tx.secrets, row))

    async def set_webhook_token(
        self, trigger_id: str, token: str, now: datetime, audit: AuditEntry | None = None
    ) -> TriggerRecord | None:
        """Give a webhook trigger a new URL token; the old one stops matching on commit.
        None if there is no webhook trigger with that id."""

        async def work(tx: Tx) -> TriggerRecord | None:
            if await tx.execute(Q["triggers.set_webhook_token"], (token, now, trigger_id)) != 1:
                return None
            if audit is not None:
                await audit_log.record(tx, audit)
            return await _select(tx, trigger_id)

        return await self.db.run(work)

    async def rotate_secret(
        self,
        trigger_id: str,
        secret: str,
        previous_expires_at: datetime,
        now: datetime,
        audit: AuditEntry | None = None,
    ) -> TriggerRecord | None:
        """Make `secret` current; the one it replaces keeps signing until
        `previous_expires_at`. None if the trigger does not exist."""

        async def work(tx: Tx) -> TriggerRecord | None:
            rotated = await rotate_trigger_secret(tx, trigger_id, secret, previous_expires_at, now)
            if rotated and audit is not None:  # a trigger deleted meanwhile: no change
                await audit_log.record(tx, audit)
            return await _select(tx, trigger_id)

        return await self.db.run(work)

    async def list(
        self,
        *,
        kind: str | None,
        status: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[TriggerRecord]:
        """A page newest first; `after` is the (created_at, id) of the previous page's last."""
        at, last = after if after is not None else (None, None)
        async with self.db.connection() as tx:
            rows = await tx.fetch_all(
                Q["triggers.list"], (kind, kind, status, status, at, at, at, last, limit)
            )
        return [_record(open_trigger_row(tx.secrets, r)) for r in rows]

    async def delete(self, trigger_id: str, audit: AuditEntry | None = None) -> bool:
        """Remove the trigger and its pending occurrences; False if there was none.

        Fired and cancelled occurrences stay for retention to prune: deleting (and so
        locking) a long-running trigger's whole history would make a DELETE cost grow
        with it. Occurrences (by primary key), then the trigger: the scheduler's order;
        the delete itself then also catches one a firing added meanwhile."""

        async def work(tx: Tx) -> bool:
            await lock_pending(tx, trigger_id)
            if await lock(tx, trigger_id) is None:
                return False
            await tx.execute(Q["triggers.delete_occurrences"], (trigger_id,))
            deleted = await tx.execute(Q["triggers.delete"], (trigger_id,)) == 1
            if deleted and audit is not None:
                await audit_log.record(tx, audit)
            return deleted

        return await self.db.run(work)


async def _select(tx: Tx, trigger_id: str) -> TriggerRecord | None:
    row = await tx.fetch_one(Q["triggers.select"], (trigger_id,))
    return None if row is None else _record(open_trigger_row(tx.secrets, row))


async def lock(tx: Tx, trigger_id: str) -> Row | None:
    """Lock the trigger row for the rest of `tx` (serialises concurrent edits)."""
    row = await tx.fetch_one(Q["triggers.select_for_update"], (trigger_id,))
    if row is not None:
        row["config"] = read_json(row["config"])
    return row


async def lock_pending(tx: Tx, trigger_id: str) -> None:
    """Lock the trigger's pending (and claimed) occurrences by primary key, as the
    scheduler does: taken before the trigger row, this keeps edits and deletes from
    deadlocking with its claims and firings. Fired history is neither read nor locked."""
    ids = [r["id"] for r in await tx.fetch_all(Q["triggers.pending_occurrence_ids"], (trigger_id,))]
    if ids:
        await tx.fetch_all(in_list(Q["triggers.lock_occurrences"], ids), ids)


async def add_occurrence(
    tx: Tx, trigger_id: str, nominal: datetime, now: datetime, config: dict[str, Any] | None = None
) -> None:
    """The occurrence at `nominal`, firing at nominal plus the trigger's jitter offset."""
    fire_at = fire_time(trigger_id, config or {}, nominal)
    await tx.execute(
        Q["triggers.insert_occurrence"], (trigger_id, fire_at, nominal, "pending", now, now)
    )


async def cancel_occurrences(tx: Tx, trigger_id: str, now: datetime) -> None:
    await tx.execute(Q["triggers.cancel_occurrences"], (now, trigger_id))


async def update(
    tx: Tx,
    trigger_id: str,
    *,
    name: str,
    status: str,
    config: dict[str, Any],
    version: int,
    now: datetime,
) -> None:
    await tx.execute(
        Q["triggers.update"], (name, status, write_json(config), version, now, trigger_id)
    )


# The audit row of a PATCH, from the row before it, the plan and the `now` it ran at.
PatchAudit = Callable[[Row, PatchPlan, datetime], AuditEntry]


async def apply_patch(
    db: Database,
    trigger_id: str,
    decide: Callable[[Row, datetime], PatchPlan],
    clock: Clock,
    audit: PatchAudit | None = None,
) -> TriggerRecord | None:
    """Lock the trigger, let `decide(row, now)` plan the change (it may raise), apply it.

    `now` is read after the locks are held: a firing that committed while we waited is
    then in the past, so the plan never re-adds an occurrence that already fired.
    None if the trigger does not exist. Run again from the start if it loses a deadlock.
    """
    return await db.run(lambda tx: _apply_patch(tx, trigger_id, decide, clock, audit))


async def _apply_patch(
    tx: Tx,
    trigger_id: str,
    decide: Callable[[Row, datetime], PatchPlan],
    clock: Clock,
    audit: PatchAudit | None,
) -> TriggerRecord | None:
    await lock_pending(tx, trigger_id)
    row = await lock(tx, trigger_id)
    if row is None:
        return None
    now = clock.now()
    plan = decide(row, now)
    await update(
        tx,
        trigger_id,
        name=plan.name,
        status=plan.status,
        config=plan.config,
        version=plan.version,
        now=now,
    )
    if plan.status == "active" and row["status"] != "active":
        await autopause.clear(tx, trigger_id)  # resumed: the reason goes, counting restarts
    if plan.reschedule:
        await cancel_occurrences(tx, trigger_id, now)
        if plan.next_fire_at is not None:
            await add_occurrence(tx, trigger_id, plan.next_fire_at, now, plan.config)
    if audit is not None:
        await audit_log.record(tx, audit(row, plan, now))
    return await _select(tx, trigger_id)
