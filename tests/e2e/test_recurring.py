"""Recurring triggers end to end: a seconds-field cron fires once per occurrence, on
time, without gaps; an interval stays on its anchor (start_at + k*every) and never drifts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventtrigger.domain.times import parse_iso
from eventtrigger.store.db import Database, read_time
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.process import EventtriggerProcess


async def _successes(db: Database, trigger_id: str, count: int, timeout: float) -> None:
    async def enough() -> bool:
        rows = await event_rows(db, "trigger_id = %s AND status = 'success'", (trigger_id,))
        return len(rows) >= count

    await wait_until(enough, timeout=timeout)


async def _stop(client: httpx.AsyncClient, trigger_id: str) -> None:
    """Pause the trigger so no more events appear while we look at them."""
    paused = await client.patch(f"/api/v1/triggers/{trigger_id}", json={"status": "paused"})
    assert paused.status_code == 200, paused.text


def _lateness_ms(rows: list[dict[str, Any]]) -> list[float]:
    return [
        round((read_time(r["fired_at"]) - read_time(r["scheduled_at"])).total_seconds() * 1000, 2)  # type: ignore[operator]
        for r in rows
    ]


async def test_six_field_cron_every_second_fires_once_per_occurrence_on_time(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "cron_scheduled",
            {"endpoint": sink.url("/tick"), "cron": "* * * * * *", "payload": {"tick": True}},
            name="every second",
        )
        created_at = parse_iso(trigger["created_at"])
        first = parse_iso(trigger["next_fire_at"])
        assert first.microsecond == 0
        assert created_at < first <= created_at + timedelta(seconds=1)

        await _successes(db, trigger["id"], 5, timeout=15)
        await _stop(client, trigger["id"])

    rows = await event_rows(db, "trigger_id = %s", (trigger["id"],))
    scheduled = [read_time(r["scheduled_at"]) for r in rows]
    print(f"\ncron every second: fired lateness (ms) {_lateness_ms(rows)}")
    assert len(rows) >= 5
    # Consecutive whole seconds from the first occurrence: no gap, no repeat.
    assert scheduled == [first + timedelta(seconds=k) for k in range(len(rows))]
    assert len({r["occurrence_id"] for r in rows}) == len(rows)
    for row in rows:
        fired_at, scheduled_at = read_time(row["fired_at"]), read_time(row["scheduled_at"])
        assert fired_at is not None and scheduled_at is not None
        assert timedelta(0) <= fired_at - scheduled_at < timedelta(seconds=1), row
        assert row["source"] == "scheduled"

    # One delivery per event (wait for those still in flight when we paused).
    deliveries = await sink.wait_for("/tick", len(rows), timeout=10)
    assert sorted(d.headers["webhook-id"] for d in deliveries) == sorted(r["id"] for r in rows)


async def test_interval_trigger_is_anchored_and_does_not_drift(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    start_at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=250_000)
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "interval_scheduled",
            {"endpoint": sink.url("/every"), "every": "2s", "start_at": rfc3339(start_at)},
            name="every two seconds",
        )
        assert parse_iso(trigger["config"]["start_at"]) == start_at
        assert parse_iso(trigger["next_fire_at"]) == start_at  # a future start_at fires at it

        await _successes(db, trigger["id"], 4, timeout=20)
        await _stop(client, trigger["id"])

    rows = await event_rows(db, "trigger_id = %s", (trigger["id"],))
    print(f"\ninterval every 2s: fired lateness (ms) {_lateness_ms(rows)}")
    assert len(rows) >= 4
    expected = [start_at + timedelta(seconds=2 * k) for k in range(len(rows))]
    assert [read_time(r["scheduled_at"]) for r in rows] == expected  # microsecond-exact
    for row in rows:
        fired_at, scheduled_at = read_time(row["fired_at"]), read_time(row["scheduled_at"])
        assert fired_at is not None and scheduled_at is not None
        assert timedelta(0) <= fired_at - scheduled_at < timedelta(seconds=1), row
    deliveries = await sink.wait_for("/every", len(rows), timeout=10)
    assert sorted(d.headers["webhook-id"] for d in deliveries) == sorted(r["id"] for r in rows)
    for delivery, when in zip(sorted(deliveries, key=lambda d: d.at), expected, strict=True):
        assert 0 <= delivery.at - when.timestamp() < 1
