"""Trigger repository against the real database: transactions, unique keys, paging."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.domain.triggers import PatchPlan, TriggerPatch, plan_patch
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.store.db import Database, Row
from eventtrigger.store.queries import Q
from eventtrigger.store.triggers import (
    TriggerStore,
    add_occurrence,
    apply_patch,
    cancel_occurrences,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = {
    "endpoint": "https://example.com/hook",
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "every": "1m",
    "start_at": "2026-03-01T12:00:00Z",
    "payload": None,
}


async def _create(
    store: TriggerStore,
    now: datetime = NOW,
    kind: str = "interval_scheduled",
    status: str = "active",
) -> str:
    trigger_id = new_id(now)
    await store.create(
        trigger_id=trigger_id,
        name="t",
        kind=kind,
        status=status,
        config=INTERVAL,
        signing_secret=new_signing_secret(),
        first_fire=now + timedelta(minutes=1),
        now=now,
    )
    return trigger_id


async def _occurrences(db: Database, trigger_id: str) -> list[tuple[datetime, str]]:
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT fire_at, status FROM trigger_schedules WHERE trigger_id = %s ORDER BY fire_at",
            (trigger_id,),
        )
    return [(r["fire_at"].replace(tzinfo=UTC), r["status"]) for r in rows]


async def test_create_writes_trigger_and_first_occurrence_together(db: Database) -> None:
    store = TriggerStore(db)
    trigger_id = await _create(store)
    record = await store.get(trigger_id)
    assert record is not None
    assert record.config == INTERVAL
    assert record.next_fire_at == NOW + timedelta(minutes=1)
    assert await _occurrences(db, trigger_id) == [(NOW + timedelta(minutes=1), "pending")]


async def test_a_failed_transaction_leaves_nothing_behind(db: Database) -> None:
    trigger_id = new_id(NOW)
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO triggers (id, name, type, status, config, signing_secret, version,"
                " created_at, updated_at) VALUES (%s, 'x', 'webhook', 'active', '{}', 's', 1, %s, %s)",
                (trigger_id, NOW, NOW),
            )
            await add_occurrence(tx, trigger_id, NOW, NOW)
            raise RuntimeError("boom")
    assert await TriggerStore(db).get(trigger_id) is None
    assert await _occurrences(db, trigger_id) == []


async def test_an_occurrence_can_only_exist_once(db: Database) -> None:
    trigger_id = await _create(TriggerStore(db))
    fire_at = NOW + timedelta(minutes=1)
    async with db.transaction() as tx:
        await add_occurrence(tx, trigger_id, fire_at, NOW)
        await add_occurrence(tx, trigger_id, fire_at, NOW)
    assert await _occurrences(db, trigger_id) == [(fire_at, "pending")]


async def test_a_cancelled_occurrence_is_revived_but_a_completed_one_is_not(db: Database) -> None:
    trigger_id = await _create(TriggerStore(db))
    fire_at = NOW + timedelta(minutes=1)
    async with db.transaction() as tx:
        await cancel_occurrences(tx, trigger_id, NOW)
    assert await _occurrences(db, trigger_id) == [(fire_at, "cancelled")]
    async with db.transaction() as tx:
        await add_occurrence(tx, trigger_id, fire_at, NOW)
    assert await _occurrences(db, trigger_id) == [(fire_at, "pending")]
    async with db.connection() as tx:
        await tx.execute(
            "UPDATE trigger_schedules SET status = 'completed' WHERE trigger_id = %s", (trigger_id,)
        )
        await add_occurrence(tx, trigger_id, fire_at, NOW)
    assert await _occurrences(db, trigger_id) == [(fire_at, "completed")]


async def test_pause_then_resume_replaces_the_occurrence_with_a_future_one(db: Database) -> None:
    trigger_id = await _create(TriggerStore(db))

    def decide(status: str) -> Callable[[Row, datetime], PatchPlan]:
        def plan(row: Row, now: datetime) -> PatchPlan:
            return plan_patch(
                kind=row["type"],
                name=row["name"],
                status=row["status"],
                config=row["config"],
                version=row["version"],
                patch=TriggerPatch(None, status, None),
                now=now,
            )

        return plan

    clock = FrozenClock(NOW)
    paused = await apply_patch(db, trigger_id, decide("paused"), clock)
    assert paused is not None and paused.status == "paused" and paused.next_fire_at is None
    clock.advance(timedelta(minutes=10, seconds=30))
    resumed = await apply_patch(db, trigger_id, decide("active"), clock)
    assert resumed is not None and resumed.status == "active"
    # the next anchored occurrence after `later`, not the ten that were missed
    assert resumed.next_fire_at == NOW + timedelta(minutes=11)
    assert await _occurrences(db, trigger_id) == [
        (NOW + timedelta(minutes=1), "cancelled"),
        (NOW + timedelta(minutes=11), "pending"),
    ]


async def test_delete_removes_the_trigger_and_its_occurrences(db: Database) -> None:
    store = TriggerStore(db)
    trigger_id = await _create(store)
    assert await store.delete(trigger_id) is True
    assert await store.get(trigger_id) is None
    assert await _occurrences(db, trigger_id) == []
    assert await store.delete(trigger_id) is False


async def test_list_filters_by_type_and_status(db: Database) -> None:
    store = TriggerStore(db)
    active = await _create(store)
    paused = await _create(store, status="paused")
    hooks = await _create(store, kind="webhook")
    assert {r.id for r in await store.list(kind="webhook", status=None, after=None, limit=10)} == {
        hooks
    }
    assert {r.id for r in await store.list(kind=None, status="paused", after=None, limit=10)} == {
        paused
    }
    everything = await store.list(kind=None, status=None, after=None, limit=10)
    assert [r.id for r in everything] == sorted([active, paused, hooks], reverse=True)


async def test_paging_returns_every_trigger_once_while_new_ones_arrive(db: Database) -> None:
    store = TriggerStore(db)
    existing = set()
    for i in range(120):
        existing.add(await _create(store, now=NOW + timedelta(milliseconds=i)))

    seen: list[str] = []
    cursor = None
    inserted = 0
    while True:
        page = await store.list(kind=None, status=None, after=cursor, limit=25)
        seen += [r.id for r in page]
        # concurrent inserts between pages: newer than anything already listed
        await asyncio.gather(
            *(_create(store, now=datetime.now(UTC) + timedelta(milliseconds=k)) for k in range(3))
        )
        inserted += 3
        if len(page) < 25:
            break
        cursor = (page[-1].created_at, page[-1].id)
    assert len(seen) == len(set(seen)), "a trigger was listed twice"
    assert existing <= set(seen), "a trigger that existed before paging was skipped"
    assert seen == sorted(seen, reverse=True)


async def test_an_occurrence_cancelled_by_an_edit_is_revived_when_the_schedule_reaches_it(
    db: Database,
) -> None:
    """An edit cancels 12:02 and adds 12:01; when 12:01 fires, the scheduler re-adds
    12:02 through the same statement, which must bring the cancelled row back, or the
    trigger would never fire again."""
    trigger_id = await _create(TriggerStore(db))
    cancelled_at = NOW + timedelta(minutes=1)
    async with db.transaction() as tx:
        await cancel_occurrences(tx, trigger_id, NOW)
    async with db.transaction() as tx:  # the scheduler's multi-row insert of next ones
        await tx.executemany(
            Q["triggers.insert_occurrence"],
            [(trigger_id, cancelled_at, cancelled_at, "pending", NOW, NOW)],
        )
    assert await _occurrences(db, trigger_id) == [(cancelled_at, "pending")]
