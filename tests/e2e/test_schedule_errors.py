"""An occurrence whose next time cannot be computed (here: its time zone vanished from
tzdata) does not block the others due with it: they fire on time, and it is tried a few
times, then recorded as a failed event with a clear error and counted in a metric."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from eventtrigger.roles.scheduler import MAX_FIRE_ATTEMPTS
from eventtrigger.store.db import Database, read_time
from tests.e2e.conftest import Sink, create_trigger, event_rows, rfc3339, wait_until
from tests.process import EventtriggerProcess


async def _schedule_errors(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "eventtrigger_schedule_errors":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    raise AssertionError("no eventtrigger_schedule_errors_total metric")


async def test_a_broken_schedule_fails_alone_and_the_rest_of_its_batch_fires(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch()
    due = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    async with api(proc) as client:
        cron: dict[str, Any] = {"cron": "* * * * * *", "timezone": "UTC", "start_at": rfc3339(due)}
        broken = await create_trigger(
            client, "cron_scheduled", {"endpoint": sink.url("/broken"), **cron}, name="broken"
        )
        healthy = await create_trigger(
            client, "cron_scheduled", {"endpoint": sink.url("/cron"), **cron}, name="healthy"
        )
        once = await create_trigger(
            client,
            "time_scheduled",
            {"endpoint": sink.url("/once"), "run_at": rfc3339(due)},
            name="once",
        )
        assert broken["next_fire_at"] == healthy["next_fire_at"]
        # The zone disappears (as after a tzdata update): next_fire() raises for it alone.
        async with db.connection() as tx:
            await tx.execute(
                "UPDATE triggers SET config = JSON_SET(config, '$.timezone', 'Mars/Olympus') "
                "WHERE id = %s",
                (broken["id"],),
            )
        assert datetime.now(UTC) < due, "setting up took too long"

        # The others due at the same instant fire on time.
        [delivered] = await sink.wait_for("/once", 1, timeout=15)
        assert delivered.at - due.timestamp() < 2.0
        await sink.wait_for("/cron", 2, timeout=10)

        async def failed() -> list[dict[str, Any]]:
            return await event_rows(db, "trigger_id = %s", (broken["id"],))

        [row] = await wait_until(failed, timeout=15)
        assert row["status"] == "failure"
        assert read_time(row["scheduled_at"]) == due
        assert "Mars/Olympus" in row["last_error"]
        assert "schedule could not be computed" in row["last_error"]
        assert row["attempts"] == 0  # never delivered
        assert await _schedule_errors(client) == 1

    assert sink.at("/broken") == []
    async with db.connection() as tx:
        occurrences = await tx.fetch_all(
            "SELECT status, attempt_count FROM trigger_schedules WHERE trigger_id = %s",
            (broken["id"],),
        )
    assert occurrences == [{"status": "completed", "attempt_count": MAX_FIRE_ATTEMPTS}]
    [once_row] = await event_rows(db, "trigger_id = %s", (once["id"],))
    assert read_time(once_row["scheduled_at"]) == due
