"""One-time (time_scheduled) triggers end to end: they fire once, no earlier than their
time and no later than 10 s after it, log one scheduled event, then read `completed`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventtrigger.domain.times import parse_iso
from eventtrigger.store.db import Database, read_json, read_time
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.process import EventtriggerProcess

LIMIT = timedelta(seconds=10)


async def _wait_for_success(db: Database, trigger_id: str) -> list[dict[str, Any]]:
    async def succeeded() -> list[dict[str, Any]]:
        rows = await event_rows(db, "trigger_id = %s", (trigger_id,))
        return rows if rows and all(r["status"] == "success" for r in rows) else []

    rows: list[dict[str, Any]] = await wait_until(succeeded, timeout=20)
    return rows


async def _assert_fired_once_on_time(
    client: httpx.AsyncClient,
    sink: Sink,
    db: Database,
    trigger: dict[str, Any],
    path: str,
    payload: Any,
) -> None:
    run_at = parse_iso(trigger["config"]["run_at"])

    [delivery] = await sink.wait_for(path, 1, timeout=20)
    arrival_lateness = delivery.at - run_at.timestamp()
    assert 0 <= arrival_lateness < LIMIT.total_seconds(), arrival_lateness
    assert delivery.json() == payload

    [row] = await _wait_for_success(db, trigger["id"])
    scheduled_at, fired_at = read_time(row["scheduled_at"]), read_time(row["fired_at"])
    assert scheduled_at == run_at
    assert fired_at is not None
    assert timedelta(0) <= fired_at - run_at < LIMIT, fired_at - run_at
    assert row["source"] == "scheduled"
    assert row["status"] == "success"
    assert row["attempts"] == 1
    assert row["last_status_code"] == 200
    assert not row["is_test_run"]
    assert row["trigger_type"] == "time_scheduled"
    assert read_json(row["payload"]) == payload
    assert delivery.headers["webhook-id"] == row["id"]

    got = await client.get(f"/api/v1/triggers/{trigger['id']}")
    assert got.status_code == 200
    assert got.json()["status"] == "completed"
    assert got.json()["next_fire_at"] is None
    # Nothing else fires: its only occurrence is completed, no pending one remains.
    async with db.connection() as tx:
        schedules = await tx.fetch_all(
            "SELECT status FROM trigger_schedules WHERE trigger_id = %s", (trigger["id"],)
        )
    assert [s["status"] for s in schedules] == ["completed"]
    assert len(sink.at(path)) == 1
    print(
        f"one-shot lateness: arrival {arrival_lateness * 1000:.1f} ms, "
        f"fired {(fired_at - run_at).total_seconds() * 1000:.1f} ms"
    )


async def test_one_shot_trigger_fires_within_10_seconds_of_its_time(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    run_at = datetime.now(UTC) + timedelta(seconds=3)
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/once"), "run_at": rfc3339(run_at), "payload": {"job": "once"}},
            name="once",
        )
        assert parse_iso(trigger["config"]["run_at"]) == run_at.replace(
            microsecond=run_at.microsecond // 1000 * 1000
        )
        assert trigger["next_fire_at"] == trigger["config"]["run_at"]
        assert trigger["status"] == "active"
        await _assert_fired_once_on_time(client, sink, db, trigger, "/once", {"job": "once"})


async def test_one_shot_trigger_with_run_in_resolves_at_save_and_fires_once(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        before = time.time()
        trigger = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/soon"), "run_in": "2s", "payload": [1, 2]},
            name="in two seconds",
        )
        after = time.time()
        assert "run_in" not in trigger["config"]
        run_at = parse_iso(trigger["config"]["run_at"]).timestamp()
        assert before + 2 <= run_at <= after + 2
        assert trigger["next_fire_at"] == trigger["config"]["run_at"]
        await _assert_fired_once_on_time(client, sink, db, trigger, "/soon", [1, 2])
