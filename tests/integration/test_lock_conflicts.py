"""Lock conflicts under concurrency, against the real database: a deadlock victim is run
again inside the server, an API insert never waits on the scheduler's claim scan, and
edits and deletes lock only a trigger's pending occurrences, not its history."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncmy
import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.domain.triggers import PatchPlan, TriggerPatch, plan_patch
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.store.db import Database, Row, Tx
from eventtrigger.store.queries import Q
from eventtrigger.store.triggers import TriggerStore, apply_patch

# The interval config and clock the trigger store's tests use.
from tests.integration.test_trigger_store import INTERVAL as CONFIG
from tests.integration.test_trigger_store import NOW

# Longer than any statement here takes, far shorter than InnoDB's 50 s lock wait: a
# statement that has to wait for the other transaction's locks fails the test quickly.
NO_WAIT = 5.0


async def _trigger(db: Database, fire_at: datetime | None = None) -> str:
    trigger_id = new_id(NOW)
    await TriggerStore(db).create(
        trigger_id=trigger_id,
        name="t",
        kind="interval_scheduled",
        status="active",
        config=CONFIG,
        signing_secret=new_signing_secret(),
        first_fire=fire_at or NOW + timedelta(minutes=1),
        now=NOW,
    )
    return trigger_id


async def test_a_deadlock_victim_is_run_again_and_both_transactions_commit(db: Database) -> None:
    """Two transactions take two rows in opposite orders: InnoDB kills one, `run` re-runs it."""
    a, b = await _trigger(db), await _trigger(db)
    both_hold_one = asyncio.Barrier(2)
    runs = {"ab": 0, "ba": 0}

    def crossing(first: str, second: str, name: str):  # type: ignore[no-untyped-def]
        async def work(tx: Tx) -> str:
            runs[name] += 1
            await tx.fetch_one(Q["triggers.select_for_update"], (first,))
            if runs[name] == 1:
                await both_hold_one.wait()
            await tx.execute("UPDATE triggers SET name = %s WHERE id = %s", (name, second))
            return name

        return work

    done = await asyncio.wait_for(
        asyncio.gather(db.run(crossing(a, b, "ab")), db.run(crossing(b, a, "ba"))), 30
    )
    assert sorted(done) == ["ab", "ba"]
    assert sorted(runs.values()) == [1, 2]  # exactly one victim, run once more


async def test_an_autocommit_statement_that_loses_a_deadlock_is_run_again(db: Database) -> None:
    """A heavier transaction holds the higher of two rows, a single autocommit UPDATE takes
    the lower and waits for the higher, then the transaction wants the lower: InnoDB kills
    the lighter one, the statement, which `connection()` runs again."""
    low, high, *others = sorted([await _trigger(db) for _ in range(8)])
    async with db.transaction() as heavy:
        # Modify several rows first, so InnoDB picks the one-row statement as the victim.
        for trigger_id in [high, *others]:
            await heavy.execute("UPDATE triggers SET name = 'heavy' WHERE id = %s", (trigger_id,))

        async def statement() -> int:
            async with db.connection() as tx:
                return await tx.execute(
                    "UPDATE triggers SET version = version + 1 WHERE id IN (%s, %s)", (low, high)
                )

        waiting = asyncio.create_task(statement())
        await _until_waiting_for_a_lock(db)
        await heavy.execute("UPDATE triggers SET name = 'heavy' WHERE id = %s", (low,))
    assert await asyncio.wait_for(waiting, 30) == 2


async def _until_waiting_for_a_lock(db: Database) -> None:
    for _ in range(1000):
        await asyncio.sleep(0.01)  # between polls, hold no connection the statement needs
        async with db.connection() as tx:
            row = await tx.fetch_one(
                "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX"
                " WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE 'UPDATE triggers SET version%%'"
            )
        if row and row["n"]:
            return
    raise AssertionError("the statement never waited for the lock")


async def test_run_gives_other_errors_to_the_caller_at_once(db: Database) -> None:
    calls = 0

    async def work(tx: Tx) -> None:
        nonlocal calls
        calls += 1
        await tx.execute("SELECT * FROM no_such_table")

    with pytest.raises(asyncmy.errors.ProgrammingError):
        await db.run(work)
    assert calls == 1


async def test_creating_a_trigger_due_soon_does_not_wait_for_the_schedulers_claim(
    db: Database,
) -> None:
    """The scheduler's claim scan (FOR UPDATE SKIP LOCKED over due occurrences) stays open
    while a trigger due inside its horizon is created. Under REPEATABLE READ the scan's gap
    locks made that insert wait (and, under load, deadlock); now it does not wait."""
    for i in range(20):
        await _trigger(db, NOW + timedelta(seconds=i))
    async with db.transaction() as claim:
        due = await claim.fetch_all(Q["schedules.select_due"], (NOW + timedelta(minutes=5), 2000))
        assert len(due) == 20
        created = await asyncio.wait_for(
            _trigger(db, NOW + timedelta(seconds=7, milliseconds=5)), NO_WAIT
        )
    assert await TriggerStore(db).get(created) is not None


def _pause(row: Row, now: datetime) -> PatchPlan:
    return plan_patch(
        kind=row["type"],
        name=row["name"],
        status=row["status"],
        config=row["config"],
        version=row["version"],
        patch=TriggerPatch(None, "paused", None),
        now=now,
    )


async def _with_history(db: Database, fired: int) -> tuple[str, list[int]]:
    """A trigger with `fired` completed occurrences and one pending; the completed ids."""
    trigger_id = await _trigger(db, NOW + timedelta(hours=1))
    rows = [
        (trigger_id, NOW - timedelta(minutes=i), None, "completed", NOW, NOW)
        for i in range(1, fired + 1)
    ]
    async with db.transaction() as tx:
        await tx.executemany(Q["triggers.insert_occurrence"], rows)
        done = await tx.fetch_all(
            "SELECT id FROM trigger_schedules WHERE trigger_id = %s AND status = 'completed'",
            (trigger_id,),
        )
    return trigger_id, [r["id"] for r in done]


@pytest.mark.parametrize("change", ["patch", "delete"])
async def test_edits_and_deletes_do_not_lock_fired_history(db: Database, change: str) -> None:
    """Another transaction holds every completed occurrence (as retention's prune would);
    a PATCH or DELETE of the trigger still goes through at once."""
    trigger_id, history = await _with_history(db, 200)
    async with db.transaction() as other:
        for occurrence in history:  # point reads lock exactly these rows, nothing next to them
            await other.fetch_one(
                "SELECT id FROM trigger_schedules WHERE id = %s FOR UPDATE", (occurrence,)
            )
        if change == "patch":
            record = await asyncio.wait_for(
                apply_patch(db, trigger_id, _pause, FrozenClock(NOW)), NO_WAIT
            )
            assert record is not None and record.status == "paused" and record.next_fire_at is None
        else:
            assert await asyncio.wait_for(TriggerStore(db).delete(trigger_id), NO_WAIT) is True
    async with db.connection() as tx:
        left = await tx.fetch_all(
            "SELECT status, COUNT(*) AS n FROM trigger_schedules WHERE trigger_id = %s"
            " GROUP BY status",
            (trigger_id,),
        )
    counts = {r["status"]: r["n"] for r in left}
    expected = {"completed": 200, "cancelled": 1} if change == "patch" else {"completed": 200}
    assert counts == expected  # history is left for retention to prune


async def test_the_edit_path_reads_pending_occurrences_through_an_index(db: Database) -> None:
    trigger_id, _ = await _with_history(db, 500)
    async with db.connection() as tx:
        await tx.fetch_all("ANALYZE TABLE trigger_schedules")
        for name, args in (
            ("triggers.pending_occurrence_ids", (trigger_id,)),
            ("triggers.cancel_occurrences", (NOW, trigger_id)),
            ("triggers.delete_occurrences", (trigger_id,)),
        ):
            plan = await tx.fetch_all("EXPLAIN " + Q[name], args)
            assert [p["key"] for p in plan] == ["ix_schedules_trigger_status"], (name, plan)
            assert all(int(p["rows"]) < 50 for p in plan), (name, plan)
