"""Signing secrets encrypted at rest, against the real database: what the columns and
snapshots hold (no `whsec_` value), that every reader still gets the plaintext (trigger
records, rotation, webhook fingerprints, the scheduler's firing, the worker's lookup,
replay sources), the start check's refusals, and `rotate_key` re-encrypting everything
(plaintext rows included) under a new first key, idempotently."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent, request_snapshot
from eventtrigger.domain.secretbox import PREFIX, SecretKeyError, key_id_of, parse_keyring
from eventtrigger.domain.signing import SigningKeys
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.store import eventlog, schedules
from eventtrigger.store.db import Database
from eventtrigger.store.events import insert_events
from eventtrigger.store.queries import Q
from eventtrigger.store.secrets import event_secrets, rotate_key
from eventtrigger.store.triggers import TriggerStore, fingerprint, fingerprints

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = {
    "endpoint": "https://example.com/hook",
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "every": "1m",
    "start_at": "2026-03-01T12:00:00Z",
    "payload": None,
}
K1 = base64.b64encode(os.urandom(32)).decode()
K2 = base64.b64encode(os.urandom(32)).decode()
TABLES = ("event_logs", "event_logs_archive", "trigger_schedules", "triggers")


@pytest.fixture
async def keyed(db: Database, migrated: Settings) -> AsyncIterator[Callable[[str], Any]]:
    """`await keyed("k1:...")`: a connected pool on the (emptied) test database with that
    EVENTTRIGGER_SECRET_KEY ("" for none). Every table with secrets is emptied after, so
    no encrypted row is left for later tests' (keyless) start checks."""
    opened: list[Database] = []

    async def open_with(value: str) -> Database:
        settings = dataclasses.replace(migrated.database, secrets=parse_keyring(value))
        database = Database(settings)
        await database.connect()
        opened.append(database)
        return database

    try:
        yield open_with
    finally:
        for database in opened:
            await database.close()
        async with db.connection() as tx:
            for table in TABLES:
                await tx.execute(f"DELETE FROM {table}")


async def _create(store: TriggerStore, secret: str, kind: str = "interval_scheduled") -> str:
    trigger_id = new_id(NOW)
    await store.create(
        trigger_id=trigger_id, name="t", kind=kind, status="active", config=CONFIG,
        signing_secret=secret, first_fire=NOW - timedelta(seconds=1), now=NOW,
    )  # fmt: skip
    return trigger_id


async def _raw_trigger(db: Database, trigger_id: str) -> dict[str, Any]:
    async with db.connection() as tx:
        row = await tx.fetch_one(
            "SELECT signing_secret, previous_signing_secret FROM triggers WHERE id = %s",
            (trigger_id,),
        )
    assert row is not None
    return row


async def _raw_request(db: Database, event_id: str, table: str = "event_logs") -> str:
    async with db.connection() as tx:
        row = await tx.fetch_one(f"SELECT request FROM {table} WHERE id = %s", (event_id,))
    assert row is not None
    return str(row["request"])


def _event(trigger_id: str | None, keys: SigningKeys | str) -> NewEvent:
    return NewEvent(
        id=new_id(NOW), trigger_id=trigger_id, trigger_type="webhook", source="api",
        scheduled_at=NOW, fired_at=NOW, payload={"n": 1},
        request=request_snapshot(CONFIG, keys), next_attempt_at=NOW + timedelta(seconds=30),
    )  # fmt: skip


async def test_trigger_secrets_are_unreadable_in_the_table_and_plaintext_to_every_reader(
    keyed: Callable[[str], Any],
) -> None:
    db: Database = await keyed(f"k1:{K1}")
    store = TriggerStore(db)
    old, new = new_signing_secret(), new_signing_secret()
    trigger_id = await _create(store, old)

    raw = await _raw_trigger(db, trigger_id)
    assert raw["signing_secret"].startswith(f"{PREFIX}k1:")
    assert "whsec_" not in raw["signing_secret"]
    record = await store.get(trigger_id)
    assert record is not None and record.signing_secret == old

    expires = NOW + timedelta(hours=1)
    rotated = await store.rotate_secret(trigger_id, new, expires, NOW)
    assert rotated is not None
    assert (rotated.signing_secret, rotated.previous_signing_secret) == (new, old)
    raw = await _raw_trigger(db, trigger_id)
    for value in raw.values():
        assert value.startswith(f"{PREFIX}k1:") and "whsec_" not in value
    # A webhook call checked against a cached record compares plaintext to plaintext.
    async with db.connection() as tx:
        assert (await fingerprints(tx, [trigger_id]))[trigger_id] == fingerprint(rotated)
    # The scheduler fires with the plaintext keys.
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE trigger_schedules SET status = 'processing', lease_owner = 'me' "
            "WHERE trigger_id = %s",
            (trigger_id,),
        )
        ids = [r["id"] for r in await tx.fetch_all(
            "SELECT id FROM trigger_schedules WHERE trigger_id = %s", (trigger_id,)
        )]  # fmt: skip
        [due] = await schedules.lock_for_fire(tx, ids, "me")
    assert due.signing_secret == SigningKeys(new, old, expires)


async def test_event_snapshots_hold_no_plaintext_and_the_worker_and_replay_read_them(
    keyed: Callable[[str], Any],
) -> None:
    db: Database = await keyed(f"k1:{K1}")
    old, new = new_signing_secret(), new_signing_secret()
    keys = SigningKeys(new, old, NOW + timedelta(hours=1))
    fired, test_run = _event(new_id(NOW), keys), _event(None, new_signing_secret())
    async with db.transaction() as tx:
        await insert_events(tx, [fired, test_run], NOW)

    for event in (fired, test_run):
        raw = await _raw_request(db, event.id)
        assert "whsec_" not in raw
        stored = orjson.loads(raw)
        assert stored["signing_secret"].startswith(f"{PREFIX}k1:")
    assert orjson.loads(await _raw_request(db, fired.id))["previous_signing_secret"].startswith(
        PREFIX
    )
    async with db.connection() as tx:
        found = await event_secrets(tx, [fired.id, test_run.id])
    assert found.unreadable == {}
    assert found.found[fired.id] == {
        "signing_secret": new,
        "previous_signing_secret": old,
        "previous_secret_expires_at": fired.request["previous_secret_expires_at"],
    }
    assert found.found[test_run.id] == {"signing_secret": test_run.request["signing_secret"]}
    source = await eventlog.replay_source(db, test_run.id)
    assert source is not None
    assert source["request"]["signing_secret"] == test_run.request["signing_secret"]


async def test_a_snapshot_moved_to_another_event_does_not_decrypt(
    keyed: Callable[[str], Any],
) -> None:
    db: Database = await keyed(f"k1:{K1}")
    first, second = _event(None, new_signing_secret()), _event(None, new_signing_secret())
    async with db.transaction() as tx:
        await insert_events(tx, [first, second], NOW)
    moved = await _raw_request(db, first.id)
    async with db.connection() as tx:
        await tx.execute("UPDATE event_logs SET request = %s WHERE id = %s", (moved, second.id))
    async with db.connection() as tx:
        found = await event_secrets(tx, [first.id, second.id])
    assert set(found.found) == {first.id}
    assert "moved from another row" in found.unreadable[second.id]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "no key is set"),
        (f"k2:{K2}", "not among the keys given"),
        (f"k1:{K2}", "does not decrypt"),  # the right id, a wrong key
    ],
)
async def test_a_process_whose_keys_cannot_read_the_stored_secrets_does_not_start(
    keyed: Callable[[str], Any], key: str, problem: str
) -> None:
    db: Database = await keyed(f"k1:{K1}")
    await _create(TriggerStore(db), new_signing_secret())
    with pytest.raises(SecretKeyError, match=problem):
        await keyed(key)


async def test_a_pending_events_key_is_checked_at_start_too(
    keyed: Callable[[str], Any],
) -> None:
    db: Database = await keyed(f"k1:{K1}")
    async with db.transaction() as tx:
        await insert_events(tx, [_event(None, new_signing_secret())], NOW)
    with pytest.raises(SecretKeyError, match="not among"):
        await keyed(f"k2:{K2}")
    # Once delivered, the event no longer needs its key to start.
    async with db.connection() as tx:
        await tx.execute("UPDATE event_logs SET status = 'success'")
    await keyed(f"k2:{K2}")


async def test_rotate_key_encrypts_plaintext_then_moves_everything_to_the_new_key(
    keyed: Callable[[str], Any],
) -> None:
    plain: Database = await keyed("")
    secrets = [new_signing_secret() for _ in range(5)]
    trigger_ids = [await _create(TriggerStore(plain), s) for s in secrets]
    events = [_event(trigger_ids[0], secrets[0]) for _ in range(3)]
    async with plain.transaction() as tx:
        await insert_events(tx, events, NOW)
        # One of them archived, as the retention role would have moved it.
        ids = [events[2].id]
        await tx.execute(Q["retention.copy_to_archive"].format(ids="%s"), ids)
        await tx.execute(Q["retention.delete_moved"].format(ids="%s"), ids)
    assert (await _raw_trigger(plain, trigger_ids[0]))["signing_secret"] == secrets[0]

    first: Database = await keyed(f"k1:{K1}")
    done = await rotate_key(first, batch=2)  # pages smaller than the tables
    assert (done.triggers, done.events, done.archived) == (5, 2, 1)
    assert await rotate_key(first, batch=2) == type(done)()  # idempotent: nothing left

    both: Database = await keyed(f"k2:{K2},k1:{K1}")
    store = TriggerStore(both)
    await store.rotate_secret(trigger_ids[1], new_signing_secret(), NOW + timedelta(hours=1), NOW)
    done = await rotate_key(both, batch=2)
    # The rotated trigger's columns were written under k2 already.
    assert (done.triggers, done.events, done.archived) == (4, 2, 1)
    for trigger_id, secret in zip(trigger_ids, secrets, strict=True):
        raw = await _raw_trigger(both, trigger_id)
        assert key_id_of(raw["signing_secret"]) == "k2"
        record = await store.get(trigger_id)
        assert record is not None
        assert secret in (record.signing_secret, record.previous_signing_secret)
    for event, table in zip(
        events, ("event_logs", "event_logs", "event_logs_archive"), strict=True
    ):
        stored = orjson.loads(await _raw_request(both, event.id, table))
        assert key_id_of(stored["signing_secret"]) == "k2"

    # Only k2 now: the old key can go.
    only: Database = await keyed(f"k2:{K2}")
    record = await TriggerStore(only).get(trigger_ids[0])
    assert record is not None and record.signing_secret == secrets[0]
