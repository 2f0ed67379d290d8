"""Retention end to end, with the windows accelerated to seconds (active 3 s, total 6 s):
a real firing goes active -> archived (and physically to the archive table) -> deleted;
and with no retention role running, the API views are still exact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import Sink, start_test_run, wait_until
from tests.process import EventtriggerProcess

WINDOWS = {
    "EVENTTRIGGER_RETENTION_ACTIVE": "3s",
    "EVENTTRIGGER_RETENTION_TOTAL": "6s",
    "EVENTTRIGGER_RETENTION_INTERVAL": "200ms",
}


async def _fire_test_run(client: httpx.AsyncClient, sink: Sink, path: str) -> str:
    answered = await start_test_run(
        client,
        "interval_scheduled",
        {
            "endpoint": sink.url(path),
            "every": "1h",
            "timeout": "1s",
            "retry": {"max_attempts": 1},  # the whole retry span fits in the 3 s window
        },
        {"probe": path},
    )
    event_id: str = answered["event_id"]
    return event_id


async def _ids(client: httpx.AsyncClient, view: str) -> list[str]:
    response = await client.get("/api/v1/events", params={"view": view, "limit": 500})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def _tables_holding(db: Database, event_id: str) -> set[str]:
    found = set()
    async with db.connection() as tx:
        for table in ("event_logs", "event_logs_archive"):
            if await tx.fetch_one(f"SELECT id FROM {table} WHERE id = %s", (event_id,)):
                found.add(table)
    return found


async def _status(db: Database, event_id: str) -> str | None:
    async with db.connection() as tx:
        for table in ("event_logs", "event_logs_archive"):
            row = await tx.fetch_one(f"SELECT status FROM {table} WHERE id = %s", (event_id,))
            if row is not None:
                return str(row["status"])
    return None


async def test_event_moves_active_to_archived_to_deleted(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch(**WINDOWS)
    async with api(proc) as client:
        event_id = await _fire_test_run(client, sink, "/lifecycle")

        # Active: listed in the default view, read back as active, in the hot table.
        assert event_id in await _ids(client, "active")
        one = await client.get(f"/api/v1/events/{event_id}")
        assert one.status_code == 200 and one.json()["retention"] == "active", one.text
        await sink.wait_for("/lifecycle", 1, timeout=10)

        # Archived: in the archived view, moved to the archive table, gone from the hot one.
        async def archived() -> dict[str, Any] | None:
            if event_id not in await _ids(client, "archived"):
                return None
            if await _tables_holding(db, event_id) != {"event_logs_archive"}:
                return None
            response = await client.get(f"/api/v1/events/{event_id}")
            return response.json() if response.status_code == 200 else None

        seen = await wait_until(archived, timeout=20, interval=0.05)
        assert seen["retention"] == "archived"
        assert seen["status"] == "success"
        assert seen["payload"] == {"probe": "/lifecycle"}
        assert event_id not in await _ids(client, "active")

        # Deleted: 404, listed nowhere, and no row left in either table.
        async def deleted() -> bool:
            response = await client.get(f"/api/v1/events/{event_id}")
            return response.status_code == 404 and not await _tables_holding(db, event_id)

        await wait_until(deleted, timeout=20, interval=0.05)
        assert response_is_problem(await client.get(f"/api/v1/events/{event_id}"), 404)
        assert event_id not in await _ids(client, "active")
        assert event_id not in await _ids(client, "archived")
        assert await _tables_holding(db, event_id) == set()


def response_is_problem(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers.get("content-type", "").startswith(
        "application/problem+json"
    )


async def test_views_are_exact_while_the_retention_role_is_stopped(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    proc = launch(roles="api,scheduler,worker", **WINDOWS)
    async with api(proc) as client:
        event_id = await _fire_test_run(client, sink, "/no-retention")
        assert event_id in await _ids(client, "active")
        one = await client.get(f"/api/v1/events/{event_id}")
        assert one.status_code == 200 and one.json()["retention"] == "active", one.text
        await sink.wait_for("/no-retention", 1, timeout=10)

        async def delivered() -> bool:
            return await _status(db, event_id) == "success"

        await wait_until(delivered, timeout=10)

        # Archived by its age alone: nothing moved it, the row is still in the hot table.
        async def archived() -> dict[str, Any] | None:
            if event_id not in await _ids(client, "archived"):
                return None
            response = await client.get(f"/api/v1/events/{event_id}")
            return response.json() if response.status_code == 200 else None

        seen = await wait_until(archived, timeout=20, interval=0.05)
        assert seen["retention"] == "archived"
        assert event_id not in await _ids(client, "active")
        assert await _tables_holding(db, event_id) == {"event_logs"}

        # Past the total window: 404 and listed nowhere, though the row is still there.
        async def expired() -> bool:
            response = await client.get(f"/api/v1/events/{event_id}")
            return response.status_code == 404

        await wait_until(expired, timeout=20, interval=0.05)
        assert event_id not in await _ids(client, "active")
        assert event_id not in await _ids(client, "archived")
        assert await _tables_holding(db, event_id) == {"event_logs"}
