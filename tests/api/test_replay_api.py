"""POST /api/v1/events/{id}/replay and POST /api/v1/events/replay over the real
`--roles=api` process: what a replay event holds, which originals are replayable (both
views, not past the total window), bulk filters and order, and every 4xx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.api._support import ODD_IDS, UNKNOWN_ID, assert_invalid, assert_problem, iso
from tests.api.test_events_api import add

EVENTS = "/api/v1/events"
H = timedelta(hours=1)


async def _replay(client: httpx.AsyncClient, event_id: str) -> str:
    answer = await client.post(f"{EVENTS}/{event_id}/replay")
    assert answer.status_code == 202, answer.text
    new: str = answer.json()["event_id"]
    return new


async def _request_of(db: Database, event_id: str) -> Any:
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT request FROM event_logs WHERE id = %s", (event_id,))
    assert row is not None
    return row["request"]


async def test_replay_of_an_archived_event_is_a_new_event_with_its_payload_and_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    original = await add(
        db, 5 * H, trigger_id=UNKNOWN_ID, status="failure", payload={"a": 1}, in_archive=True
    )

    new_id = await _replay(client, original.id)

    got = (await client.get(f"{EVENTS}/{new_id}")).json()
    assert new_id != original.id
    assert got["source"] == "replay"
    assert got["replay_of"] == original.id
    assert got["trigger_id"] == UNKNOWN_ID  # a deleted trigger's events replay too
    assert got["trigger_type"] == "webhook"
    assert got["payload"] == {"a": 1}
    assert got["is_test_run"] is False
    assert (got["status"], got["attempts"], got["retention"]) == ("pending", 0, "active")
    # The request snapshot is the original's, byte for byte (no trigger to re-sign with).
    assert await _request_of(db, new_id) == await _request_of_archive(db, original.id)
    # The original is untouched and says nothing about replays.
    assert (await client.get(f"{EVENTS}/{original.id}")).json()["replay_of"] is None
    listed = await client.get(EVENTS, params={"source": "replay"})
    assert [i["id"] for i in listed.json()["items"]] == [new_id]


async def _request_of_archive(db: Database, event_id: str) -> Any:
    async with db.connection() as tx:
        row = await tx.fetch_one(
            "SELECT request FROM event_logs_archive WHERE id = %s", (event_id,)
        )
    assert row is not None
    return row["request"]


async def test_test_run_replays_stay_test_runs(client: httpx.AsyncClient, db: Database) -> None:
    original = await add(db, H / 2, is_test_run=True, source="manual-test", status="success")
    got = (await client.get(f"{EVENTS}/{await _replay(client, original.id)}")).json()
    assert (got["is_test_run"], got["note"], got["trigger_id"]) == (True, "test run", None)


@pytest.mark.parametrize("event_id", [UNKNOWN_ID, *ODD_IDS])
async def test_replay_of_an_unknown_event_is_404(client: httpx.AsyncClient, event_id: str) -> None:
    assert_problem(await client.post(f"{EVENTS}/{event_id}/replay"), 404)


async def test_replay_past_the_total_window_is_404_even_before_deletion(
    client: httpx.AsyncClient, db: Database
) -> None:
    gone = await add(db, 49 * H, status="success", in_archive=True)
    assert_problem(await client.post(f"{EVENTS}/{gone.id}/replay"), 404)
    assert_problem(await client.get(f"{EVENTS}/{gone.id}/attempts"), 404)


async def test_bulk_replays_matching_events_oldest_first_up_to_limit(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = "01BX5ZZKBKACTAV9WEVGEMMVRZ"
    wanted = [
        await add(db, 30 * H, trigger_id=UNKNOWN_ID, status="failure", in_archive=True),
        await add(db, 3 * H, trigger_id=UNKNOWN_ID, status="failure"),  # archived, hot table
        await add(db, H, trigger_id=UNKNOWN_ID, status="failure"),
        await add(db, H / 2, trigger_id=UNKNOWN_ID, status="failure"),
    ]
    await add(db, 2 * H + H / 2, trigger_id=UNKNOWN_ID, status="success")  # other status
    await add(db, 2 * H - H / 4, trigger_id=other, status="failure")  # other trigger
    await add(db, 49 * H, trigger_id=UNKNOWN_ID, status="failure", in_archive=True)  # gone

    answer = await client.post(
        f"{EVENTS}/replay", json={"trigger_id": UNKNOWN_ID, "status": "failure", "limit": 3}
    )

    assert answer.status_code == 202, answer.text
    ids = answer.json()["event_ids"]
    assert len(ids) == 3
    replayed = [(await client.get(f"{EVENTS}/{i}")).json()["replay_of"] for i in ids]
    assert replayed == [e.id for e in wanted[:3]]  # oldest first, the limit respected

    # since/until narrow by fired time (since inclusive, until exclusive).
    window = await client.post(
        f"{EVENTS}/replay",
        json={
            "status": "failure",
            "since": iso(wanted[1].fired_at),
            "until": iso(wanted[3].fired_at),
        },
    )
    assert window.status_code == 202, window.text
    originals = [
        (await client.get(f"{EVENTS}/{i}")).json()["replay_of"] for i in window.json()["event_ids"]
    ]
    # The other trigger's failure lies between wanted[1] and wanted[2]; the first
    # replays' events are pending, so they do not match.
    assert originals[0] == wanted[1].id
    assert originals[2] == wanted[2].id
    assert len(originals) == 3  # wanted[3] itself is at `until`: excluded


@pytest.mark.parametrize("trigger_id", [UNKNOWN_ID, "nope", "é" * 26, "😀"])
async def test_bulk_with_nothing_matching_is_202_with_no_ids(
    client: httpx.AsyncClient, trigger_id: str
) -> None:
    answer = await client.post(f"{EVENTS}/replay", json={"trigger_id": trigger_id})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"event_ids": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "trigger_id"),  # no filter at all
        ({"limit": 5}, "trigger_id"),  # a limit is not a filter
        ({"trigger_id": UNKNOWN_ID, "limit": 0}, "limit"),
        ({"trigger_id": UNKNOWN_ID, "limit": 1001}, "limit"),
        ({"trigger_id": UNKNOWN_ID, "limit": "10"}, "limit"),
        ({"status": "done"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-01-01T00:00:00"}, "until"),  # no offset
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),  # after year 9999 in UTC
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"trigger_id": UNKNOWN_ID, "view": "archived"}, "view"),  # unknown field
    ],
)
async def test_bulk_invalid_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], field: str
) -> None:
    await add(db, H, trigger_id=UNKNOWN_ID, status="failure")
    assert_invalid(await client.post(f"{EVENTS}/replay", json=body), field)
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM event_logs")
    assert row is not None and row["n"] == 1  # nothing replayed


async def test_an_event_that_was_never_sendable_is_409_and_skipped_in_bulk(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A scheduled event recorded as failed because its schedule could not be computed
    has no request snapshot: there is nothing to send again."""
    broken = await add(db, H, trigger_id=UNKNOWN_ID, status="failure")
    fine = await add(db, H / 2, trigger_id=UNKNOWN_ID, status="failure")
    async with db.connection() as tx:
        await tx.execute("UPDATE event_logs SET request = '{}' WHERE id = %s", (broken.id,))

    assert_problem(await client.post(f"{EVENTS}/{broken.id}/replay"), 409)
    bulk = await client.post(f"{EVENTS}/replay", json={"trigger_id": UNKNOWN_ID})
    assert bulk.status_code == 202, bulk.text
    [only] = bulk.json()["event_ids"]
    assert (await client.get(f"{EVENTS}/{only}")).json()["replay_of"] == fine.id
