"""The stats snapshot against the real database: its event counts are exact (equal to
counting every row) after moves, early moves by a retention clock that runs ahead, and
deletes, while reading neither the whole archive nor the whole hot table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventtrigger.observability.stats import take_snapshot
from eventtrigger.roles.retention import run_once
from eventtrigger.store.db import Database
from eventtrigger.store.queries import Q
from eventtrigger.store.retention import minute_of
from tests.integration.test_retention import NOW, WINDOWS, finish, insert, new_event

M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
async def no_counts(db: Database) -> None:
    """The shared `db` fixture empties the event tables; their counts go with them."""
    async with db.connection() as tx:
        await tx.execute("DELETE FROM event_archive_counts")


async def _counted_row_by_row(db: Database) -> dict[str, int]:
    """The figures the slow way: every row of both tables, by our clock's views."""
    active_since, kept_since = WINDOWS.active_since(NOW), WINDOWS.kept_since(NOW)
    counts = {"active": 0, "archived": 0}
    async with db.connection() as tx:
        for table in ("event_logs", "event_logs_archive"):
            row = await tx.fetch_one(
                f"SELECT SUM(fired_at >= %s) AS active,"
                f" SUM(fired_at < %s AND fired_at >= %s) AS archived FROM {table}",
                (active_since, active_since, kept_since),
            )
            assert row is not None
            counts["active"] += int(row["active"] or 0)
            counts["archived"] += int(row["archived"] or 0)
    return counts


async def test_event_counts_stay_exact_through_moves_and_deletes(db: Database) -> None:
    # Every 7 minutes over 50 h: some active, most archived, some past the total window,
    # several in the minute the total window's edge cuts through.
    events = [new_event(NOW - i * 7 * M, n=i) for i in range(430)]
    edge = WINDOWS.kept_since(NOW)
    events += [new_event(edge + s * timedelta(seconds=13), n=1000 + s) for s in range(-4, 5)]
    ids = await insert(db, events)
    await finish(db, ids)
    assert (await take_snapshot(db, WINDOWS, NOW)).events == await _counted_row_by_row(db)

    await run_once(db, WINDOWS, NOW)  # moves and deletes by our clock
    assert (await take_snapshot(db, WINDOWS, NOW)).events == await _counted_row_by_row(db)

    # A retention process whose clock runs 30 minutes ahead moves events that are still
    # active by ours and deletes some that are still kept by ours.
    await run_once(db, WINDOWS, NOW + 30 * M)
    expected = await _counted_row_by_row(db)
    assert expected["active"] > 0 and expected["archived"] > 0
    async with db.connection() as tx:
        early = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM event_logs_archive WHERE fired_at >= %s",
            (WINDOWS.active_since(NOW),),
        )
    assert early is not None and early["n"] > 0  # the active figure needs the archive too
    assert (await take_snapshot(db, WINDOWS, NOW)).events == expected


async def test_the_archive_is_never_counted_row_by_row(db: Database) -> None:
    events = [
        new_event(NOW - WINDOWS.active - i * 30 * timedelta(seconds=1), n=i) for i in range(1, 3001)
    ]
    ids = await insert(db, events)
    await finish(db, ids)
    await run_once(db, WINDOWS, NOW)
    async with db.connection() as tx:
        await tx.fetch_all("ANALYZE TABLE event_logs_archive, event_archive_counts")
        archived = await tx.fetch_one("SELECT COUNT(*) AS n FROM event_logs_archive")
        assert archived is not None and archived["n"] == 3000
        kept_since = WINDOWS.kept_since(NOW)
        for query, args in (
            ("stats.archive_range", (kept_since, kept_since + M)),
            ("stats.archive_range", (WINDOWS.active_since(NOW), NOW + M)),
            ("stats.archive_minutes", (minute_of(kept_since) + 1,)),
        ):
            plan = await tx.fetch_all("EXPLAIN " + Q[query], args)
            assert all(p["type"] != "ALL" for p in plan), (query, plan)
            if query == "stats.archive_range":
                assert all(int(p["rows"]) < 100 for p in plan), (query, plan)
    snap = await take_snapshot(db, WINDOWS, NOW)
    assert snap.events == {"active": 0, "archived": 3000}


async def test_the_keeper_recounts_the_windows_only_as_often_as_their_cost_allows(
    db: Database,
) -> None:
    """A count that took 1 s waits 10 s (RECOUNT_SHARE 0.1) before the next one; the cheap
    figures are read afresh every time meanwhile."""
    from eventtrigger.observability import stats
    from eventtrigger.observability.metrics import Metrics

    ticks = iter([0.0, 1.0, 5.0, 11.0, 11.5])  # start and end of the 1st, 2nd start, ...
    keeper = stats.StatsKeeper(db, WINDOWS, Metrics(), stopwatch=lambda: next(ticks))
    first = await keeper.refresh(NOW)  # counts (took 1 s): next count due at 10 s
    assert first.events == {"active": 0, "archived": 0}

    await insert(db, [new_event(NOW - M, n=1)])
    carried = await keeper.refresh(NOW)  # at 5 s: window counts carried over
    assert carried.events == {"active": 0, "archived": 0}
    assert carried.jobs["events_pending"] == 1  # the cheap figures are fresh

    recounted = await keeper.refresh(NOW)  # at 11 s: counted again
    assert recounted.events == {"active": 1, "archived": 0}
    assert recounted.outcomes["pending"] == 1
