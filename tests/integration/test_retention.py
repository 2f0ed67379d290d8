"""The retention role against the real database, with a controlled `now`: moves finished
events past the active window (copy and delete in one transaction, bounded batches, safe to
interrupt, re-run and run twice at once), leaves events being retried where the worker
updates them, deletes everything past the total window, prunes occurrences and keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from eventtrigger.clock import FrozenClock
from eventtrigger.config import Settings
from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id
from eventtrigger.observability.health import Health
from eventtrigger.observability.metrics import Metrics
from eventtrigger.observability.stats import StatsKeeper
from eventtrigger.resources import Resources
from eventtrigger.roles import retention
from eventtrigger.roles.retention import run_once
from eventtrigger.store import deliveries, eventlog
from eventtrigger.store.db import Database, Row
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.eventlog import ARCHIVE, HOT, EventFilter
from eventtrigger.store.events import in_list, insert_events
from eventtrigger.store.queries import Q
from eventtrigger.store.retention import BATCH, move_batch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE = timedelta(hours=2)
TOTAL = timedelta(hours=48)
WINDOWS = Windows(active=ACTIVE, total=TOTAL)
US = timedelta(microseconds=1)
REQUEST = {
    "url": "https://example.com/hook",
    "method": "POST",
    "headers": {"X-Tenant": "acme"},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "signing_secret": "whsec_c2VjcmV0",
}


def new_event(fired_at: datetime, n: int = 0, trigger_id: str | None = None) -> NewEvent:
    return NewEvent(
        id=new_id(fired_at),
        trigger_id=trigger_id,
        trigger_type="interval_scheduled" if trigger_id else "webhook",
        source="scheduled" if trigger_id else "api",
        scheduled_at=fired_at - timedelta(milliseconds=n % 7),
        fired_at=fired_at,
        payload={"n": n, "text": f"événement {n}", "nested": [n, {"k": None}]},
        request=REQUEST,
        next_attempt_at=fired_at + timedelta(seconds=30),
        occurrence_id=n + 1 if trigger_id else None,
        is_test_run=n % 5 == 0,
        note="test run" if n % 5 == 0 else None,
    )


async def insert(db: Database, events: Sequence[NewEvent]) -> list[str]:
    async with db.transaction() as tx:
        await insert_events(tx, events, NOW)
    return [e.id for e in events]


async def finish(db: Database, ids: Sequence[str], status: str = "success") -> None:
    """Mark events finished as a worker would (attempt 1 recorded)."""
    async with db.connection() as tx:
        await tx.execute(
            in_list(
                "UPDATE event_logs SET status = %s, attempts = 1, last_status_code = %s,"
                " delivered_at = fired_at, next_attempt_at = NULL WHERE id IN ({ids})",
                ids,
            ),
            (status, 200 if status == "success" else 500, *ids),
        )


# Columns that only matter while an event is in flight (the delivery lease); the archive
# holds finished events and has no such column.
IN_FLIGHT_ONLY = ("lease_owner", "dlq_due_at", "publish_due", "parked", "lag_mark")


async def rows(db: Database, table: str) -> dict[str, Row]:
    async with db.connection() as tx:
        found = await tx.fetch_all(f"SELECT * FROM {table}")
    return {r["id"]: {k: v for k, v in r.items() if k not in IN_FLIGHT_ONLY} for r in found}


async def count(db: Database, table: str) -> int:
    async with db.connection() as tx:
        row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


def assert_each_once(
    before: dict[str, Row], hot: dict[str, Row], archive: dict[str, Row], moved: set[str]
) -> None:
    """Every event of `before` is in exactly one table, unchanged; `moved` in the archive."""
    assert not set(hot) & set(archive), "an event is in both tables"
    assert set(hot) | set(archive) == set(before), "an event was lost or appeared"
    assert set(archive) == moved
    for event_id, row in before.items():
        assert (hot.get(event_id) or archive[event_id]) == row, event_id


async def test_move_interrupted_half_way_then_rerun_loses_and_duplicates_nothing(
    db: Database,
) -> None:
    old = [new_event(NOW - ACTIVE - timedelta(minutes=1 + i), i) for i in range(25)]
    recent = [new_event(NOW - timedelta(minutes=i), 100 + i) for i in range(3)]
    old_ids = await insert(db, old)
    await insert(db, recent)
    await finish(db, old_ids[::2], "success")
    await finish(db, old_ids[1::2], "failure")
    await finish(db, [e.id for e in recent])
    before = await rows(db, HOT)
    assert len(before) == 28

    # A crash after the copy and the delete, before COMMIT: everything rolls back.
    with pytest.raises(RuntimeError, match="crash"):
        async with db.transaction() as tx:
            selected = await tx.fetch_all(
                Q["retention.select_movable"], (WINDOWS.active_since(NOW), 10)
            )
            ids = [r["id"] for r in selected]
            assert len(ids) == 10
            assert await tx.execute(in_list(Q["retention.copy_to_archive"], ids), ids) == 10
            assert await tx.execute(in_list(Q["retention.delete_moved"], ids), ids) == 10
            raise RuntimeError("crash")
    assert_each_once(before, await rows(db, HOT), await rows(db, ARCHIVE), set())

    # A crashed pass that finished only some of its batches, each committed on its own.
    assert await move_batch(db, WINDOWS.active_since(NOW), limit=7) == 7
    assert await move_batch(db, WINDOWS.active_since(NOW), limit=7) == 7
    archive = await rows(db, ARCHIVE)
    assert len(archive) == 14
    assert_each_once(before, await rows(db, HOT), archive, set(archive))

    # An earlier run that copied a row but never deleted it (whatever the cause): the
    # re-run must still leave that event exactly once.
    straggler = next(i for i in old_ids if i not in archive)
    async with db.connection() as tx:
        await tx.execute(in_list(Q["retention.copy_to_archive"], [straggler]), [straggler])

    # Re-run: the rest moves, nothing twice, nothing lost, rows unchanged.
    done = await run_once(db, WINDOWS, NOW)
    assert done["moved"] == 11
    assert_each_once(before, await rows(db, HOT), await rows(db, ARCHIVE), set(old_ids))

    # And once more: nothing left to do.
    again = await run_once(db, WINDOWS, NOW)
    assert again["moved"] == 0
    assert_each_once(before, await rows(db, HOT), await rows(db, ARCHIVE), set(old_ids))


async def test_a_pass_moves_more_than_one_batch(db: Database) -> None:
    old = [new_event(NOW - ACTIVE - timedelta(seconds=1 + i), i) for i in range(BATCH + 150)]
    ids = []
    for start in range(0, len(old), 500):
        ids += await insert(db, old[start : start + 500])
    await finish(db, ids)
    before = await rows(db, HOT)
    done = await run_once(db, WINDOWS, NOW)
    assert done["moved"] == BATCH + 150
    assert_each_once(before, await rows(db, HOT), await rows(db, ARCHIVE), set(ids))


async def test_two_movers_concurrently_move_each_event_once(
    db: Database, migrated: Settings
) -> None:
    old = [new_event(NOW - ACTIVE - timedelta(seconds=1 + i), i) for i in range(1200)]
    recent = [new_event(NOW - timedelta(seconds=i), 5000 + i) for i in range(50)]
    ids: list[str] = []
    for start in range(0, len(old), 400):
        ids += await insert(db, old[start : start + 400])
    await insert(db, recent)
    await finish(db, ids + [e.id for e in recent])
    before = await rows(db, HOT)

    # Two pools, as two retention processes would have.
    other = Database(migrated.database)
    await other.connect()
    try:
        results = await asyncio.gather(
            run_once(db, WINDOWS, NOW), run_once(other, WINDOWS, NOW), return_exceptions=True
        )
    finally:
        await other.close()

    hot, archive = await rows(db, HOT), await rows(db, ARCHIVE)
    # Whatever happened, no event is lost, duplicated or altered ...
    assert not set(hot) & set(archive), "an event is in both tables"
    assert set(hot) | set(archive) == set(before)
    for event_id, row in before.items():
        assert (hot.get(event_id) or archive[event_id]) == row
    # ... and neither pass failed: both finish, between them moving each event once.
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    assert errors == [], f"a concurrent retention pass failed: {errors}"
    moved = [r["moved"] for r in results if isinstance(r, dict)]
    assert sum(moved) == 1200
    assert_each_once(before, hot, archive, set(ids))
    assert set(hot) == {e.id for e in recent}


async def test_retrying_events_are_not_moved_and_stay_readable(db: Database) -> None:
    long_ago = NOW - ACTIVE - timedelta(hours=5)
    retrying, pending, done = (new_event(long_ago - timedelta(seconds=i), i) for i in range(3))
    await insert(db, [retrying, pending, done])
    await finish(db, [done.id])
    async with db.connection() as tx:
        await tx.execute(
            "UPDATE event_logs SET status = 'retrying', attempts = 1, last_status_code = 503"
            " WHERE id = %s",
            (retrying.id,),
        )

    result = await run_once(db, WINDOWS, NOW)
    assert result["moved"] == 1
    assert set(await rows(db, HOT)) == {retrying.id, pending.id}
    assert set(await rows(db, ARCHIVE)) == {done.id}

    # Still readable, in the archived view (from the hot table) and by id.
    lower, upper = WINDOWS.bounds("archived", NOW)
    listed = await eventlog.page(
        db,
        tables=(HOT, ARCHIVE),
        lower=lower,
        upper=upper,
        where=EventFilter(),
        after=None,
        limit=10,
    )
    assert [r["id"] for r in listed] == [retrying.id, pending.id, done.id]
    found = await eventlog.find(db, retrying.id)
    assert found is not None and found["status"] == "retrying"
    assert WINDOWS.view_of(found["fired_at"], NOW) == "archived"

    # The worker's update path still finds it where it is and records the next attempt.
    async with db.transaction() as tx:
        recorded = await deliveries.record_attempts(
            tx,
            [
                Attempt(
                    event_id=retrying.id,
                    attempt=2,
                    status="success",
                    status_code=200,
                    error=None,
                    delivered_at=NOW,
                    next_attempt_at=None,
                )
            ],
            NOW,
        )
    assert recorded == [True]

    # Finished now, the next pass moves it with the outcome it recorded.
    assert (await run_once(db, WINDOWS, NOW))["moved"] == 1
    moved = (await rows(db, ARCHIVE))[retrying.id]
    assert (moved["status"], moved["attempts"], moved["last_status_code"]) == ("success", 2, 200)
    assert set(await rows(db, HOT)) == {pending.id}


async def test_delete_past_total_window_removes_rows_from_both_tables(db: Database) -> None:
    expired_hot = [new_event(NOW - TOTAL - timedelta(seconds=1 + i), i) for i in range(BATCH + 20)]
    expired_archive = [new_event(NOW - TOTAL - timedelta(hours=3, seconds=i), i) for i in range(30)]
    at_edge = new_event(NOW - TOTAL, 1)
    kept_archive = new_event(NOW - TOTAL + timedelta(hours=1), 2)
    kept_active = new_event(NOW - timedelta(minutes=5), 3)
    for start in range(0, len(expired_hot), 300):
        await insert(db, expired_hot[start : start + 300])
    await insert(db, [*expired_archive, at_edge, kept_archive, kept_active])
    # Expired rows in every state: unfinished ones are deleted too, they are past saving.
    await finish(db, [e.id for e in expired_hot[::3]], "success")
    await finish(db, [e.id for e in expired_hot[1::3]], "failure")
    await finish(db, [e.id for e in (*expired_archive, at_edge, kept_archive)])
    async with db.transaction() as tx:
        ids = [e.id for e in (*expired_archive, kept_archive)]
        await tx.execute(in_list(Q["retention.copy_to_archive"], ids), ids)
        await tx.execute(in_list(Q["retention.delete_moved"], ids), ids)
    assert await count(db, HOT) == BATCH + 20 + 2
    assert await count(db, ARCHIVE) == 31

    result = await run_once(db, WINDOWS, NOW)

    assert result["deleted_hot"] + result["deleted_archive"] == BATCH + 20 + 30
    hot, archive = await rows(db, HOT), await rows(db, ARCHIVE)
    assert set(hot) == {kept_active.id}
    assert set(archive) == {at_edge.id, kept_archive.id}  # the edge itself is still kept
    for event in expired_hot + expired_archive:
        assert await eventlog.find(db, event.id) is None

    # A moment later the edge event expires too.
    later = await run_once(db, WINDOWS, NOW + US)
    assert later["deleted_archive"] == 1
    assert set(await rows(db, ARCHIVE)) == {kept_archive.id}


async def _schedule(db: Database, trigger_id: str, fire_at: datetime, status: str) -> None:
    async with db.connection() as tx:
        await tx.execute(
            "INSERT INTO trigger_schedules (trigger_id, fire_at, status, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (trigger_id, fire_at, status, fire_at, fire_at),
        )


async def _schedules(db: Database) -> set[tuple[str, datetime, str]]:
    async with db.connection() as tx:
        found = await tx.fetch_all("SELECT trigger_id, fire_at, status FROM trigger_schedules")
    return {(r["trigger_id"], r["fire_at"].replace(tzinfo=UTC), r["status"]) for r in found}


async def _keys(db: Database) -> set[str]:
    async with db.connection() as tx:
        found = await tx.fetch_all("SELECT idem_key FROM idempotency_keys")
    return {r["idem_key"] for r in found}


async def test_prunes_finished_occurrences_and_old_idempotency_keys(db: Database) -> None:
    trigger = new_id(NOW)
    long_ago = NOW - TOTAL - timedelta(hours=1)
    recent = NOW - timedelta(hours=1)
    keep: set[tuple[str, datetime, str]] = set()
    gone: set[tuple[str, datetime, str]] = set()
    for fire_at, status in [
        (long_ago, "completed"),
        (long_ago + US, "cancelled"),
        (long_ago + 2 * US, "pending"),  # never pruned: still to fire
        (long_ago + 3 * US, "processing"),  # claimed: the scheduler's lease decides
        (recent, "completed"),
        (recent + US, "cancelled"),
        (recent + 2 * US, "pending"),
        (NOW - TOTAL, "completed"),  # finished exactly at the edge: kept
    ]:
        await _schedule(db, trigger, fire_at, status)  # updated_at = fire_at
        row = (trigger, fire_at, status)
        (gone if fire_at < NOW - TOTAL and status in ("completed", "cancelled") else keep).add(row)
    for i in range(BATCH + 10):
        await _schedule(db, new_id(NOW), long_ago - timedelta(seconds=i), "completed")

    async with db.connection() as tx:
        for key, created in (
            ("old", long_ago),
            ("just-expired", NOW - TOTAL - US),
            ("edge", NOW - TOTAL),
            ("fresh", recent),
        ):
            await tx.execute(
                "INSERT INTO idempotency_keys (scope, idem_key, event_id, request_hash, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (trigger, key, new_id(created), "0" * 64, created),
            )

    result = await run_once(db, WINDOWS, NOW)

    assert result["pruned_occurrences"] == 2 + BATCH + 10
    assert result["pruned_keys"] == 2
    assert await _schedules(db) == keep
    assert not gone & await _schedules(db)
    assert await _keys(db) == {"edge", "fresh"}


async def test_nothing_to_do_on_an_empty_database(db: Database) -> None:
    assert await run_once(db, WINDOWS, NOW) == {
        "moved": 0,
        "deleted_hot": 0,
        "deleted_archive": 0,
        "pruned_occurrences": 0,
        "pruned_keys": 0,
    }


async def _attempt_ids(db: Database) -> set[str]:
    async with db.connection() as tx:
        found = await tx.fetch_all("SELECT event_id FROM delivery_attempts")
    return {r["event_id"] for r in found}


async def test_attempt_history_stays_when_archived_and_goes_with_its_event(
    db: Database,
) -> None:
    """Attempts are written with the outcome, survive the event's move to the archive, and
    are deleted with the event, from either table, once it is past the total window."""
    expired_hot = new_event(NOW - TOTAL - timedelta(minutes=1), 1)
    expired_archive = new_event(NOW - TOTAL - timedelta(minutes=2), 2)
    archived = new_event(NOW - ACTIVE - timedelta(minutes=1), 3)
    events = [expired_hot, expired_archive, archived]
    await insert(db, events)
    async with db.transaction() as tx:
        stored = await deliveries.record_attempts(
            tx,
            [
                deliveries.Attempt(
                    e.id, 1, "success", 200, None, e.fired_at, None, e.fired_at, 12, "ok"
                )
                for e in events
            ],
            NOW,
        )
    assert stored == [True, True, True]
    async with db.transaction() as tx:
        ids = [expired_archive.id]
        await tx.execute(in_list(Q["retention.copy_to_archive"], ids), ids)
        await tx.execute(in_list(Q["retention.delete_moved"], ids), ids)
    assert await _attempt_ids(db) == {e.id for e in events}

    await run_once(db, WINDOWS, NOW)

    assert set(await rows(db, ARCHIVE)) == {archived.id}  # moved; the others deleted
    assert await _attempt_ids(db) == {archived.id}
    [kept] = await eventlog.attempts(db, archived.id)
    assert (kept["attempt"], kept["status_code"], kept["response_body"]) == (1, 200, "ok")
    assert kept["duration_ms"] == 12


def stop_after(calls: int) -> tuple[list[int], Callable[[], bool]]:
    """A `more` that says stop on its `calls`-th call; the list counts its calls."""
    seen: list[int] = []

    def more() -> bool:
        seen.append(1)
        return len(seen) < calls

    return seen, more


async def test_a_pass_hears_from_each_batch_and_ends_between_batches_where_told(
    db: Database,
) -> None:
    # 60 finished events to move, 40 never-finished ones past the total window to delete.
    movable = [new_event(NOW - ACTIVE - timedelta(minutes=1 + i), i) for i in range(60)]
    expired = [new_event(NOW - TOTAL - timedelta(minutes=1 + i), 100 + i) for i in range(40)]
    await finish(db, await insert(db, movable))
    await insert(db, expired)
    before = await rows(db, HOT)

    # Stopped after the 3rd batch of the move: 3 batches of 10 moved, nothing else done.
    calls, more = stop_after(3)
    assert await run_once(db, WINDOWS, NOW, size=10, more=more) == {"moved": 30}
    assert len(calls) == 3
    assert await count(db, ARCHIVE) == 30
    assert await count(db, HOT) == 70

    # The next pass goes on: 3 full batches and the empty one end the move, then it is
    # stopped after the first batch of the deletes.
    calls, more = stop_after(5)
    done = await run_once(db, WINDOWS, NOW, size=10, more=more)
    assert done == {
        "moved": 30,
        "deleted_hot": 10,
        "deleted_archive": 0,
        "pruned_occurrences": 0,
        "pruned_keys": 0,
    }
    assert len(calls) == 5
    assert await count(db, HOT) == 30

    # And the last one finishes: each step heard from once per batch, the last included.
    calls, more = stop_after(1000)
    done = await run_once(db, WINDOWS, NOW, size=10, more=more)
    assert done["moved"] == 0 and done["deleted_hot"] == 30
    assert len(calls) == 1 + 4 + 1 + 1 + 1  # move, hot deletes (3 + empty), three empty
    hot, archive = await rows(db, HOT), await rows(db, ARCHIVE)
    assert hot == {}
    assert archive == {k: v for k, v in before.items() if k in {e.id for e in movable}}


class RecordingHealth(Health):
    """Counts the retention role's beats and sets `stop` at the `stop_at`-th."""

    def __init__(self, stop: asyncio.Event, stop_at: int) -> None:
        super().__init__(("retention",), {})
        self.beats = 0
        self._stop = stop
        self._stop_at = stop_at

    def beat(self, role: str, loop: str | None = None) -> None:
        super().beat(role, loop)
        self.beats += 1
        if self.beats == self._stop_at:
            self._stop.set()


async def test_the_role_beats_per_batch_and_a_stop_ends_a_long_pass_between_batches(
    db: Database, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = [new_event(NOW - ACTIVE - timedelta(seconds=1 + i), i) for i in range(200)]
    await finish(db, await insert(db, due))
    monkeypatch.setattr(retention, "BATCH", 10)
    stop = asyncio.Event()
    # The first beat is the loop's, before the pass; stop comes at the pass's 3rd batch.
    health = RecordingHealth(stop, stop_at=4)
    settings = replace(migrated, retention_active=ACTIVE, retention_total=TOTAL)
    res = Resources(
        settings=settings,
        clock=FrozenClock(NOW),
        db=db,
        health=health,
        metrics=Metrics(),
        stats=StatsKeeper(db, WINDOWS, Metrics()),
    )
    await asyncio.wait_for(retention.run(res, stop), 10)
    # Stopped between batches: the three it finished, no more; the rest waits.
    assert await count(db, ARCHIVE) == 30
    assert await count(db, HOT) == 170
