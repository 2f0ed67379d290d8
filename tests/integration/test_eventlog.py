"""Reading event logs against the real database: exact views from the fired time (whatever
the retention role has moved yet), keyset pages that stay correct while events arrive,
the per-trigger aggregate, and indexes on every read path (EXPLAIN)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.domain.retention import Windows
from eventtrigger.ids import new_id
from eventtrigger.store import aggregate, eventlog
from eventtrigger.store.db import Database
from eventtrigger.store.eventlog import ARCHIVE, HOT, EventFilter
from eventtrigger.store.events import in_list, insert_events
from eventtrigger.store.queries import Q
from eventtrigger.store.retention import move_batch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE = timedelta(hours=2)
TOTAL = timedelta(hours=48)
WINDOWS = Windows(active=ACTIVE, total=TOTAL)
US = timedelta(microseconds=1)
REQUEST = {
    "url": "https://example.com/hook",
    "method": "POST",
    "headers": {},
    "timeout": "10s",
    "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
    "signing_secret": "whsec_c2VjcmV0",
}


def new_event(
    fired_at: datetime,
    *,
    trigger_id: str | None = None,
    trigger_type: str = "webhook",
    source: str = "api",
    is_test_run: bool = False,
    payload: Any = None,
) -> NewEvent:
    return NewEvent(
        id=new_id(fired_at),
        trigger_id=trigger_id,
        trigger_type=trigger_type,
        source=source,
        scheduled_at=fired_at,
        fired_at=fired_at,
        payload=payload,
        request=REQUEST,
        next_attempt_at=fired_at + timedelta(seconds=30),
        is_test_run=is_test_run,
        note="test run" if is_test_run else None,
    )


async def insert(db: Database, events: Sequence[NewEvent]) -> list[str]:
    async with db.transaction() as tx:
        await insert_events(tx, events, NOW)
    return [e.id for e in events]


async def set_status(db: Database, ids: Sequence[str], status: str, attempts: int = 1) -> None:
    async with db.connection() as tx:
        await tx.execute(
            in_list("UPDATE event_logs SET status = %s, attempts = %s WHERE id IN ({ids})", ids),
            (status, attempts, *ids),
        )


async def archive(db: Database, ids: Sequence[str]) -> None:
    """Move rows to the archive table with plain SQL, as the retention role would have."""
    async with db.transaction() as tx:
        await tx.execute(in_list(Q["retention.copy_to_archive"], ids), ids)
        await tx.execute(in_list(Q["retention.delete_moved"], ids), ids)


async def ids_in(db: Database, table: str) -> list[str]:
    async with db.connection() as tx:
        rows = await tx.fetch_all(f"SELECT id FROM {table}")
    return [r["id"] for r in rows]


async def view_ids(db: Database, view: str, now: datetime, limit: int = 500) -> list[str]:
    """The ids of one view, as the API reads it: active from the hot table only, archived
    from both (an archived event may still sit in the hot table)."""
    lower, upper = WINDOWS.bounds(view, now)
    tables = (HOT,) if view == "active" else (HOT, ARCHIVE)
    rows = await eventlog.page(
        db,
        tables=tables,
        lower=lower,
        upper=upper,
        where=EventFilter(),
        after=None,
        limit=limit,
    )
    return [r["id"] for r in rows]


async def test_views_are_exact_without_the_retention_role(db: Database) -> None:
    events = {
        "recent": new_event(NOW - timedelta(minutes=1)),
        "at_active_edge": new_event(NOW - ACTIVE),
        "just_past_active": new_event(NOW - ACTIVE - US),
        "late_in_hot": new_event(NOW - timedelta(hours=3)),
        "moved": new_event(NOW - timedelta(hours=10)),
        "at_total_edge": new_event(NOW - TOTAL),
        "just_past_total": new_event(NOW - TOTAL - US),
        "expired_archive": new_event(NOW - timedelta(hours=50)),
    }
    ids = {name: e.id for name, e in events.items()}
    await insert(db, list(events.values()))
    await archive(db, [ids["moved"], ids["expired_archive"]])
    # Nothing else was moved or deleted: the retention role is "late" for all of them.
    assert set(await ids_in(db, ARCHIVE)) == {ids["moved"], ids["expired_archive"]}
    assert len(await ids_in(db, HOT)) == 6

    by_age = sorted(events, key=lambda n: events[n].fired_at, reverse=True)
    active = ["recent", "at_active_edge"]
    archived = ["just_past_active", "late_in_hot", "moved", "at_total_edge"]
    assert await view_ids(db, "active", NOW) == [ids[n] for n in by_age if n in active]
    assert await view_ids(db, "archived", NOW) == [ids[n] for n in by_age if n in archived]

    # One event by id: found in whichever table holds it; its view comes from fired_at.
    for name, event in events.items():
        row = await eventlog.find(db, event.id)
        assert row is not None, name
        assert row["fired_at"] == event.fired_at
        expected = "active" if name in active else "archived" if name in archived else None
        assert WINDOWS.view_of(row["fired_at"], NOW) == expected, name

    # Older than the total window: physically still there, yet in no view.
    for name in ("just_past_total", "expired_archive"):
        assert ids[name] not in await view_ids(db, "active", NOW)
        assert ids[name] not in await view_ids(db, "archived", NOW)

    # Later, still without any retention pass, the views follow the clock exactly.
    later = NOW + ACTIVE - timedelta(minutes=1)  # "recent" is exactly at the active edge now
    assert await view_ids(db, "active", later) == [ids["recent"]]
    assert ids["at_active_edge"] in await view_ids(db, "archived", later)
    assert ids["at_total_edge"] not in await view_ids(db, "archived", NOW + US)
    assert await eventlog.find(db, new_id(NOW)) is None


async def test_page_filters(db: Database) -> None:
    t1, t2 = new_id(NOW), new_id(NOW)
    events = [
        new_event(NOW - timedelta(minutes=1), trigger_id=t1, source="api"),
        new_event(
            NOW - timedelta(minutes=2), trigger_id=t1, source="manual-test", is_test_run=True
        ),
        new_event(NOW - timedelta(minutes=3), trigger_id=t2, source="scheduled"),
        new_event(NOW - timedelta(minutes=4), source="manual-test", is_test_run=True),
    ]
    ids = await insert(db, events)
    await set_status(db, [ids[0], ids[2]], "success")
    lower, upper = WINDOWS.bounds("active", NOW)

    async def select(where: EventFilter) -> list[str]:
        rows = await eventlog.page(
            db, tables=(HOT,), lower=lower, upper=upper, where=where, after=None, limit=50
        )
        return [r["id"] for r in rows]

    assert await select(EventFilter()) == ids
    assert await select(EventFilter(trigger_id=t1)) == ids[:2]
    assert await select(EventFilter(status="success")) == [ids[0], ids[2]]
    assert await select(EventFilter(status="pending")) == [ids[1], ids[3]]
    assert await select(EventFilter(source="manual-test")) == [ids[1], ids[3]]
    assert await select(EventFilter(is_test_run=True)) == [ids[1], ids[3]]
    assert await select(EventFilter(is_test_run=False)) == [ids[0], ids[2]]
    assert await select(EventFilter(trigger_id=t1, status="pending")) == [ids[1]]
    assert await select(EventFilter(trigger_id=new_id(NOW))) == []


async def _all_pages(
    db: Database,
    view: str,
    limit: int,
    between_pages: Any,
) -> list[str]:
    lower, upper = WINDOWS.bounds(view, NOW)
    tables = (HOT,) if view == "active" else (HOT, ARCHIVE)
    seen: list[str] = []
    after: tuple[datetime, str] | None = None
    last_key: tuple[datetime, str] | None = None
    for _ in range(100):
        rows = await eventlog.page(
            db,
            tables=tables,
            lower=lower,
            upper=upper,
            where=EventFilter(),
            after=after,
            limit=limit,
        )
        assert len(rows) <= limit
        keys = [(r["fired_at"], r["id"]) for r in rows]
        assert keys == sorted(keys, reverse=True)  # newest first within the page
        if last_key is not None and keys:
            assert keys[0] < last_key  # and across pages
        seen += [r["id"] for r in rows]
        if len(rows) < limit:
            return seen
        after = last_key = keys[-1]
        await between_pages()
    raise AssertionError("paging did not end")


async def test_pagination_over_1000_events_returns_each_once_while_new_ones_arrive(
    db: Database,
) -> None:
    # Three events per millisecond, so many share a fired time and only the id breaks ties.
    originals = [
        new_event(NOW - timedelta(minutes=30) + timedelta(milliseconds=i // 3)) for i in range(1000)
    ]
    await insert(db, originals)  # one multi-row INSERT
    assert len(await ids_in(db, HOT)) == 1000
    arrived: list[str] = []

    async def newer_ones_arrive() -> None:
        fresh = [new_event(NOW - timedelta(seconds=10) + timedelta(milliseconds=len(arrived)))]
        fresh += [new_event(fresh[0].fired_at) for _ in range(2)]  # same time as each other
        arrived.extend(await insert(db, fresh))

    seen = await _all_pages(db, "active", 100, newer_ones_arrive)

    expected = [e.id for e in sorted(originals, key=lambda e: (e.fired_at, e.id), reverse=True)]
    assert arrived  # events really arrived while paging
    assert seen == expected  # every original exactly once, newest first, none of the new
    assert len(set(seen)) == 1000


async def test_archived_pages_return_each_once_while_the_mover_runs(db: Database) -> None:
    """The archived view reads two tables; moving rows between them between pages (as a
    retention pass does) neither skips nor repeats an event."""
    originals = [new_event(NOW - timedelta(hours=3) - timedelta(seconds=i)) for i in range(300)]
    ids = await insert(db, originals)
    await set_status(db, ids, "success")

    async def mover_runs() -> None:
        await move_batch(db, WINDOWS.active_since(NOW), limit=37)

    seen = await _all_pages(db, "archived", 50, mover_runs)
    assert seen == ids  # inserted newest first already
    assert len(await ids_in(db, ARCHIVE)) > 0  # the mover really moved rows meanwhile


class _MoveBetweenReads:
    """A Database stand-in for eventlog.page: after its first table read, a retention batch
    commits on another connection (the mover of another process, at the worst moment)."""

    def __init__(self, db: Database, limit: int) -> None:
        self.db, self.limit, self.moved = db, limit, 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self._racing(self.db.connection()) as tx:
            yield tx

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._racing(self.db.transaction()) as tx:
            yield tx

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Any]:
        async with self._racing(self.db.snapshot()) as tx:
            yield tx

    @asynccontextmanager
    async def _racing(self, opened: Any) -> AsyncIterator[Any]:
        outer = self

        class _Tx:
            def __init__(self, tx: Any) -> None:
                self.tx, self.reads = tx, 0

            async def fetch_all(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = await self.tx.fetch_all(sql, args)
                self.reads += 1
                if self.reads == 1:
                    outer.moved += await move_batch(
                        outer.db, WINDOWS.active_since(NOW), limit=outer.limit
                    )
                return found

        async with opened as tx:
            yield _Tx(tx)


async def test_archived_page_lists_each_event_once_when_a_move_commits_mid_read(
    db: Database,
) -> None:
    """The archived view reads the hot table, then the archive: an event moved in between
    must still be listed once (views are exact at any instant, the mover may run anytime)."""
    events = [new_event(NOW - timedelta(hours=3) - timedelta(seconds=i)) for i in range(10)]
    ids = await insert(db, events)
    await set_status(db, ids, "success")
    racing = _MoveBetweenReads(db, limit=4)
    lower, upper = WINDOWS.bounds("archived", NOW)
    rows = await eventlog.page(
        racing,  # type: ignore[arg-type]
        tables=(HOT, ARCHIVE),
        lower=lower,
        upper=upper,
        where=EventFilter(),
        after=None,
        limit=50,
    )
    assert racing.moved == 4
    listed = [r["id"] for r in rows]
    twice = sorted({i for i in listed if listed.count(i) > 1})
    assert twice == [], f"{len(twice)} events listed twice in one page ({len(listed)} rows)"
    assert listed == ids


async def test_aggregate_matches_events_fired(db: Database) -> None:
    t_hook, t_cron, t_gone, t_deleted = (new_id(NOW) for _ in range(4))

    def at(hours: float) -> datetime:
        return NOW - timedelta(hours=hours)

    hook = [new_event(at(h), trigger_id=t_hook) for h in (0.1, 0.2, 0.3, 0.5, 1, 4, 30)]
    cron = [
        new_event(at(h), trigger_id=t_cron, trigger_type="cron_scheduled", source="scheduled")
        for h in (3, 5, 47.9)
    ]
    too_old = [
        new_event(NOW - TOTAL - US, trigger_id=t_hook),  # hot, not yet deleted
        new_event(at(60), trigger_id=t_gone, trigger_type="interval_scheduled"),  # archive
        new_event(at(49), trigger_id=t_cron, trigger_type="cron_scheduled"),
    ]
    # A deleted trigger (no row in `triggers`) still counts, and so does an event exactly
    # at the total edge. Test runs without a trigger are never aggregated.
    deleted = [new_event(NOW - TOTAL, trigger_id=t_deleted, trigger_type="time_scheduled")]
    no_trigger = [new_event(at(h), source="manual-test", is_test_run=True) for h in (0.1, 6)]
    await insert(db, hook + cron + too_old + deleted + no_trigger)

    await set_status(db, [hook[0].id, hook[1].id, hook[5].id], "success")
    await set_status(db, [hook[2].id, hook[6].id], "failure", attempts=5)
    await set_status(db, [hook[3].id], "retrying")  # hook[4] stays pending
    await set_status(db, [cron[0].id, cron[2].id, no_trigger[1].id], "success")
    await set_status(db, [cron[1].id], "retrying", attempts=2)
    await set_status(db, [too_old[0].id, too_old[1].id, deleted[0].id], "success")
    # Some in the archive, some still in the hot table; the newest cron event is archived
    # while an older one still sits in the hot table (retrying), so last_fired_at must be
    # the maximum over both tables.
    await archive(
        db, [hook[5].id, hook[6].id, cron[0].id, cron[2].id, too_old[1].id, no_trigger[1].id]
    )

    items = await aggregate.page(db, since=WINDOWS.kept_since(NOW), before_id=None, limit=10)

    # Newest trigger first (the API pages by trigger id).
    assert items == sorted(
        [
            {
                "trigger_id": t_hook,
                "trigger_type": "webhook",
                "counts": {"success": 3, "failure": 2, "pending": 1, "retrying": 1, "total": 7},
                "last_fired_at": hook[0].fired_at,
            },
            {
                "trigger_id": t_cron,
                "trigger_type": "cron_scheduled",
                "counts": {"success": 2, "failure": 0, "pending": 0, "retrying": 1, "total": 3},
                "last_fired_at": cron[0].fired_at,
            },
            {
                "trigger_id": t_deleted,
                "trigger_type": "time_scheduled",
                "counts": {"success": 1, "failure": 0, "pending": 0, "retrying": 0, "total": 1},
                "last_fired_at": NOW - TOTAL,
            },
        ],
        key=lambda i: str(i["trigger_id"]),
        reverse=True,
    )


async def _explain(db: Database, query: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        return await tx.fetch_all("EXPLAIN " + query, args)


def _scans(plan: list[dict[str, Any]], *, sorted_by_index: bool) -> list[str]:
    """What is wrong with a plan: a table scan, no index, or a sort the index should save."""
    problems = []
    for step in plan:
        if step["type"] == "ALL" or step["key"] is None:
            problems.append(
                f"{step['table']}: type={step['type']} key={step['key']} rows={step['rows']}"
                f" extra={step['Extra']}"
            )
        if sorted_by_index and "filesort" in (step["Extra"] or ""):
            problems.append(f"{step['table']}: {step['Extra']}")
    return problems


async def test_read_paths_use_indexes(db: Database) -> None:
    """Lists (by time, by trigger and time, with and without a cursor), the aggregate and
    the lookup by id each use an index on both tables; every offending plan is reported."""
    # Enough rows that the optimizer has real statistics (with only a few dozen rows in a
    # table it may prefer a scan whatever the indexes): 1,000 hot, 3,000 archived.
    triggers = [new_id(NOW) for _ in range(20)]
    hot = [
        new_event(NOW - timedelta(seconds=6 * i), trigger_id=triggers[i % 20]) for i in range(1000)
    ]
    old = [
        new_event(NOW - ACTIVE - timedelta(hours=1, seconds=20 * i), trigger_id=triggers[i % 20])
        for i in range(3000)
    ]
    events = hot + old
    ids = []
    for start in range(0, len(events), 1000):
        ids += await insert(db, events[start : start + 1000])
    await set_status(db, ids[::3], "success")
    await set_status(db, ids[1::3], "failure")
    for start in range(0, len(old), 500):
        await archive(db, [e.id for e in old[start : start + 500]])
    async with db.connection() as tx:
        await tx.fetch_all(f"ANALYZE TABLE {HOT}, {ARCHIVE}")
    assert len(await ids_in(db, HOT)) == 1000 and len(await ids_in(db, ARCHIVE)) == 3000

    bad: dict[str, list[str]] = {}
    for table, view, rows in ((HOT, "active", hot), (ARCHIVE, "archived", old)):
        cursor = (rows[100].fired_at, rows[100].id)
        lower, upper = WINDOWS.bounds(view, NOW)
        for where in (EventFilter(), EventFilter(trigger_id=triggers[3])):
            extra, extra_args = where.sql()
            query = Q["eventlog.page"].format(table=table, where=extra)
            for at, last in ((None, None), cursor):
                args = [lower, upper or eventlog.FAR_FUTURE, *extra_args, at, at, at, last, 51]
                plan = await _explain(db, query, args)
                name = f"page {table} trigger_id={where.trigger_id is not None} cursor={at is not None}"
                problems = _scans(plan, sorted_by_index=True)
                if where.trigger_id is not None and "trigger" not in (plan[0]["key"] or ""):
                    # By trigger: the (trigger_id, fired_at, id) index, not a time scan.
                    problems.append(f"key={plan[0]['key']}, not the by-trigger index")
                if problems:
                    bad[name] = problems

        since = WINDOWS.kept_since(NOW)
        query = Q["aggregate.trigger_ids"].format(table=table)
        plan = await _explain(db, query, [since, None, None, 51])
        if problems := _scans(plan, sorted_by_index=False):
            bad[f"aggregate trigger ids {table}"] = problems
        query = Q["aggregate.counts"].format(table=table, ids=", ".join(["%s"] * 3))
        plan = await _explain(db, query, [*triggers[:3], since])
        if problems := _scans(plan, sorted_by_index=False):
            bad[f"aggregate counts {table}"] = problems

        present = (await ids_in(db, table))[0]  # an absent id is an "impossible WHERE"
        plan = await _explain(db, Q["eventlog.one"].format(table=table), [present])
        if plan[0]["key"] != "PRIMARY":
            bad[f"one {table}"] = [f"key={plan[0]['key']}"]

    assert not bad, "read paths without a usable index:\n" + "\n".join(
        f"{name}: {'; '.join(problems)}" for name, problems in bad.items()
    )
