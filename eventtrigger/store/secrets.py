"""Signing secrets in the database: encrypted at rest, read by the worker, re-encrypted.

Where they live: a trigger's `signing_secret` and `previous_signing_secret` columns, and
the request snapshot of each event (`signing_secret`, and during a rotation's grace
`previous_signing_secret`), which the worker signs the event's attempts with. With
EVENTTRIGGER_SECRET_KEY set, each is stored encrypted (domain/secretbox.py) with its row's
identity as associated data: the trigger id for the columns, the event id for snapshots.
Without it they are stored as given, as before; plaintext and encrypted values may mix
(rows written before the key was set) until `rotate-secret-key` has been run.

Job messages carry no secrets (domain/jobs.py): the worker reads them from the event rows
it leases, in the lease's transaction (`event_secrets`), so they are never stale.

The start check (`check_keys`) refuses a process whose keys cannot read what is stored,
rather than letting it fail delivery after delivery. `rotate_key` re-encrypts every
stored secret under the first key in batches of short transactions: idempotent (a row
already under the first key is left alone) and safe while the platform runs (each row is
locked, read and rewritten in one transaction, and a value is rewritten only if it still
is what was read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncmy.errors
import orjson

from eventtrigger.domain.jobs import snapshot_secrets
from eventtrigger.domain.secretbox import Keyring, SecretKeyError, is_sealed, key_id_of
from eventtrigger.store.queries import Q

if TYPE_CHECKING:
    from eventtrigger.store.db import Database, Row, Tx

CHUNK = 1000  # ids per statement, to keep IN lists and packets small
TRIGGER_FIELDS = ("signing_secret", "previous_signing_secret")
SNAPSHOT_FIELDS = ("signing_secret", "previous_signing_secret")  # the expiry is no secret
# A database not migrated yet (no table, or a schema from before rotation's columns):
# nothing this version stored, nothing to check.
NOT_MIGRATED = (1146, 1054)  # no such table, no such column
ROTATE_BATCH = 500


def _in_list(query: str, ids: Sequence[Any]) -> str:
    return query.format(ids=", ".join(["%s"] * len(ids)))


# -- triggers -----------------------------------------------------------------------------


def seal_trigger(keys: Keyring, trigger_id: str, name: str, secret: str) -> str:
    """A trigger's secret as its column `name` stores it."""
    return keys.seal(secret, trigger_id, name)


def open_trigger_row(keys: Keyring, row: Row) -> Row:
    """A triggers row (with `id`) with its secret columns decrypted, in place."""
    for name in TRIGGER_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = keys.open(value, row["id"], name)
    return row


async def rotate_trigger_secret(
    tx: Tx, trigger_id: str, secret: str, previous_expires_at: datetime, now: datetime
) -> int:
    """Make `secret` the trigger's current secret and the one it replaces the previous
    one (a previous one still in its grace is dropped: at most two signatures). The
    current one is decrypted and encrypted again as the previous: the field is part of
    its associated data. The number of rows changed (0: no such trigger)."""
    row = await tx.fetch_one(Q["secrets.lock_trigger_secret"], (trigger_id,))
    if row is None:
        return 0
    keys = tx.secrets
    current = keys.open(row["signing_secret"], trigger_id, "signing_secret")
    return await tx.execute(
        Q["secrets.rotate_trigger_secret"],
        (
            seal_trigger(keys, trigger_id, "previous_signing_secret", current),
            previous_expires_at,
            seal_trigger(keys, trigger_id, "signing_secret", secret),
            now,
            trigger_id,
        ),
    )


# -- event snapshots ----------------------------------------------------------------------


def seal_snapshot(keys: Keyring, event_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """An event's request snapshot as stored: its secrets encrypted under the event id."""
    if not keys.enabled:
        return request
    sealed = dict(request)
    for name in SNAPSHOT_FIELDS:
        value = sealed.get(name)
        if isinstance(value, str) and value:
            sealed[name] = keys.seal(value, event_id, name)
    return sealed


def open_snapshot(keys: Keyring, event_id: str, request: Any) -> Any:
    """A stored request snapshot with its secrets decrypted (SecretKeyError if they cannot
    be); anything that is not a snapshot object is returned as it is."""
    if not isinstance(request, dict):
        return request
    opened = dict(request)
    for name in SNAPSHOT_FIELDS:
        value = opened.get(name)
        if isinstance(value, str):
            opened[name] = keys.open(value, event_id, name)
    return opened


@dataclass
class EventSecrets:
    """What the worker signs leased events with: per event id, the snapshot's signing
    fields; and per event id whose stored secrets cannot be decrypted, why."""

    found: dict[str, dict[str, str]]
    unreadable: dict[str, str]


async def event_secrets(tx: Tx, ids: Sequence[str]) -> EventSecrets:
    """The signing fields of these events' request snapshots (those that exist)."""
    result = EventSecrets({}, {})
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for row in await tx.fetch_all(_in_list(Q["secrets.event_secrets"], chunk), chunk):
            try:
                opened = open_snapshot(tx.secrets, row["id"], row)
            except SecretKeyError as exc:
                result.unreadable[row["id"]] = str(exc)
                continue
            result.found[row["id"]] = snapshot_secrets(opened)
    return result


# -- the start check ----------------------------------------------------------------------


async def check_keys(db: Database) -> None:
    """SecretKeyError unless these keys read every key id in use: for each key id among
    the triggers' secrets and the snapshots of events still to deliver, the key is given
    and decrypts a value written under it. (One value per key id: a wrong key fails on
    any of them.) A database not migrated yet passes."""
    keys = db.secrets
    try:
        async with db.connection() as tx:
            triggers = await tx.fetch_all(Q["secrets.sealed_triggers"])
            events = await tx.fetch_all(Q["secrets.sealed_pending_events"])
    except (asyncmy.errors.ProgrammingError, asyncmy.errors.OperationalError) as exc:
        if exc.args and exc.args[0] in NOT_MIGRATED:
            return
        raise
    seen: set[str] = set()
    samples: list[tuple[str, str, str]] = []  # (value, row id, field)
    for rows in (triggers, events):
        for row in rows:
            for name in TRIGGER_FIELDS:
                value = row.get(name)
                if isinstance(value, str) and is_sealed(value):
                    key_id = key_id_of(value) or ""
                    if key_id not in seen:
                        seen.add(key_id)
                        samples.append((value, row["id"], name))
    for value, row_id, name in samples:
        keys.open(value, row_id, name)


# -- re-encryption under the first key ----------------------------------------------------


@dataclass
class Rotated:
    """Rows rewritten, per table."""

    triggers: int = 0
    events: int = 0
    archived: int = 0


async def rotate_key(db: Database, batch: int = ROTATE_BATCH) -> Rotated:
    """Re-encrypt every stored secret that is not yet under the first key (plaintext ones
    included): triggers, then event snapshots (kept and archived), in pages of `batch`
    rows by id, each page one short transaction that locks its rows (in id order, as the
    worker locks events). Idempotent: run it again after an interruption. SecretKeyError
    if a value cannot be decrypted (its key is not among those given)."""
    keys = db.secrets
    if not keys.enabled:
        raise SecretKeyError("no key is set: there is nothing to encrypt with")
    done = Rotated()
    done.triggers = await _rotate_table(db, "trigger", batch, _rewrite_trigger)
    done.events = await _rotate_table(db, "event", batch, _rewrite_event)
    done.archived = await _rotate_table(db, "archived_event", batch, _rewrite_event)
    return done


async def _rotate_table(
    db: Database,
    table: str,
    batch: int,
    rewrite: Callable[[Keyring, Row], tuple[Any, ...] | None],
) -> int:
    """Page through one table by id, rewriting the rows `rewrite` changes."""
    count, after = 0, ""
    while True:
        async with db.transaction() as tx:
            rows = await tx.fetch_all(Q[f"secrets.{table}_page"], (after, batch))
            for row in rows:
                args = rewrite(db.secrets, row)
                if args is not None:
                    await tx.execute(Q[f"secrets.rewrite_{table}"], (*args, row["id"]))
                    count += 1
        if len(rows) < batch:
            return count
        after = rows[-1]["id"]


def _reseal(keys: Keyring, value: Any, row_id: str, name: str) -> Any:
    if isinstance(value, str) and value and keys.needs_rotation(value):
        return keys.seal(keys.open(value, row_id, name), row_id, name)
    return value


def _rewrite_trigger(keys: Keyring, row: Row) -> tuple[Any, ...] | None:
    """The new (signing_secret, previous_signing_secret) of a triggers row; None if both
    are under the first key already."""
    new = tuple(_reseal(keys, row[name], row["id"], name) for name in TRIGGER_FIELDS)
    return None if new == tuple(row[name] for name in TRIGGER_FIELDS) else new


def _rewrite_event(keys: Keyring, row: Row) -> tuple[Any, ...] | None:
    """The new request JSON of an event row; None if it has no secret to re-encrypt."""
    try:
        request = orjson.loads(row["request"])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict):
        return None
    new = dict(request)
    for name in SNAPSHOT_FIELDS:
        if name in new:
            new[name] = _reseal(keys, new[name], row["id"], name)
    return None if new == request else (orjson.dumps(new).decode(),)
