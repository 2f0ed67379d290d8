"""GET /api/v1/stats/series time ranges: the presets (15m, 1h, 6h, 24h, 48h) with about
60 round buckets each, and a custom `from`/`to` within the retention window; every
answer says its bucket length and the window it covers. Bad windows are 400s naming the
field. Over the real `--roles=api` process (total retention 48 h)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.domain.jobs import NewEvent
from eventtrigger.ids import new_id
from eventtrigger.roles.api.series import custom_range
from eventtrigger.store.db import Database
from eventtrigger.store.events import insert_events
from tests.api._support import assert_invalid, iso, parse_time

SERIES = "/api/v1/stats/series"
PRESETS = {"15m": (15, 60), "1h": (60, 60), "6h": (360, 60), "24h": (1200, 72), "48h": (1800, 96)}


async def add_fired(db: Database, fired_at: datetime, trigger_id: str) -> None:
    event = NewEvent(
        id=new_id(fired_at),
        trigger_id=trigger_id,
        trigger_type="webhook",
        source="api",
        scheduled_at=fired_at,
        fired_at=fired_at,
        payload=None,
        request={
            "url": "https://example.com/hook",
            "method": "POST",
            "headers": {},
            "timeout": "10s",
            "retry": {"max_attempts": 1, "initial_delay": "2s", "max_delay": "5m"},
            "signing_secret": "whsec_c2VjcmV0",
        },
        next_attempt_at=fired_at + timedelta(seconds=30),
    )
    async with db.transaction() as tx:
        await insert_events(tx, [event], fired_at)


def _total(points: list[dict[str, Any]]) -> int:
    return sum(sum(p["counts"].values()) for p in points)


@pytest.mark.parametrize(("name", "shape"), PRESETS.items())
async def test_each_preset_has_round_buckets_ending_now_and_says_its_window(
    client: httpx.AsyncClient, db: Database, name: str, shape: tuple[int, int]
) -> None:
    bucket, count = shape
    body = (await client.get(SERIES, params={"range": name})).json()
    assert (body["range"], body["bucket_seconds"], body["bucket_count"]) == (name, bucket, count)
    start, end, as_of = parse_time(body["from"]), parse_time(body["to"]), parse_time(body["as_of"])
    assert end - start == timedelta(seconds=bucket * count)
    assert end - timedelta(seconds=bucket) <= as_of < end  # the last bucket holds now
    assert int(start.timestamp()) % bucket == 0  # aligned, so refreshes line up
    assert len(body["points"]) == count
    assert parse_time(body["points"][0]["start"]) == start


async def test_no_range_is_the_last_hour(client: httpx.AsyncClient) -> None:
    body = (await client.get(SERIES)).json()
    assert (body["range"], body["bucket_seconds"], body["bucket_count"]) == ("1h", 60, 60)


async def test_a_custom_window_counts_what_fired_in_it_in_about_60_buckets(
    client: httpx.AsyncClient, db: Database
) -> None:
    trigger_id = new_id(datetime.now(UTC))
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    end = start + timedelta(hours=2)
    inside = [start, start + timedelta(minutes=59), end - timedelta(seconds=1)]
    outside = [start - timedelta(seconds=1), end, end + timedelta(minutes=5)]
    for at in inside + outside:
        await add_fired(db, at, trigger_id)
    body = (
        await client.get(
            SERIES, params={"from": iso(start), "to": iso(end), "trigger_id": trigger_id}
        )
    ).json()
    assert body["range"] == "custom"
    assert (body["bucket_seconds"], body["bucket_count"]) == (120, 60)  # 2 h in 2 min
    assert (parse_time(body["from"]), parse_time(body["to"])) == (start, end)
    points = body["points"]
    assert len(points) == 60 and parse_time(points[0]["start"]) == start
    assert _total(points) == len(inside)
    assert [i for i, p in enumerate(points) if sum(p["counts"].values())] == [0, 29, 59]


async def test_a_custom_window_without_to_ends_now(client: httpx.AsyncClient) -> None:
    start = datetime.now(UTC) - timedelta(minutes=29)  # 58 buckets of 30 s
    body = (await client.get(SERIES, params={"from": iso(start)})).json()
    assert body["range"] == "custom" and body["bucket_seconds"] == 30
    assert parse_time(body["from"]) == start
    assert abs(parse_time(body["to"]) - parse_time(body["as_of"])) < timedelta(seconds=1)


def test_custom_buckets_are_the_smallest_round_length_for_at_most_60() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    for span, bucket, count in [
        (timedelta(seconds=30), 1, 30),
        (timedelta(minutes=10), 10, 60),
        (timedelta(minutes=61), 120, 31),
        (timedelta(hours=7), 600, 42),
        (timedelta(hours=48), 3600, 48),
    ]:
        got = custom_range(t0, t0 + span)
        assert (got.bucket, got.count, got.end) == (bucket, count, t0 + span), span


async def test_answers_are_reused_briefly(client: httpx.AsyncClient) -> None:
    first = (await client.get(SERIES, params={"range": "48h"})).json()
    again = (await client.get(SERIES, params={"range": "48h"})).json()
    assert again["as_of"] == first["as_of"]  # cached: one query for both


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"range": "7d"}, "range"),
        ({"range": "1h", "from": "2030-01-01T00:00:00Z"}, "range"),
        ({"to": "2030-01-01T00:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2030-01-01T00:00:00"}, "from"),  # no offset
        ({"to": "soon", "from": "2030-01-01T00:00:00Z"}, "to"),
        ({"trigger_id": "not-an-id"}, "trigger_id"),
    ],
)
async def test_bad_windows_are_400_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert_invalid(await client.get(SERIES, params=params), field)


async def test_a_window_outside_the_kept_48_hours_is_400(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    too_old = {"from": iso(now - timedelta(hours=49)), "to": iso(now - timedelta(hours=47))}
    assert_invalid(await client.get(SERIES, params=too_old), "from")
    future = {"from": iso(now - timedelta(hours=1)), "to": iso(now + timedelta(hours=1))}
    assert_invalid(await client.get(SERIES, params=future), "to")
    backwards = {"from": iso(now - timedelta(hours=1)), "to": iso(now - timedelta(hours=2))}
    assert_invalid(await client.get(SERIES, params=backwards), "to")
    empty = {"from": iso(now - timedelta(hours=1)), "to": iso(now - timedelta(hours=1))}
    assert_invalid(await client.get(SERIES, params=empty), "to")
