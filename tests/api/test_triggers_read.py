"""GET /api/v1/triggers/{id} and GET /api/v1/triggers (filters, limits, cursor paging)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api._support import (
    ODD_IDS,
    TRIGGERS,
    UNKNOWN_ID,
    assert_invalid,
    assert_problem,
    create,
    parse_time,
    trigger_body,
)


async def _create_many(client: httpx.AsyncClient, n: int, **kw: Any) -> list[str]:
    """Create `n` triggers one after another; their ids, oldest first."""
    ids = []
    for i in range(n):
        ids.append((await create(client, trigger_body(name=f"t{i}", **kw)))["id"])
    return ids


async def _all_pages(
    client: httpx.AsyncClient, params: dict[str, Any], between: Any = None
) -> tuple[list[str], list[int]]:
    """Follow next_cursor to the end; every id seen and each page's size."""
    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        response = await client.get(TRIGGERS, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        seen += [t["id"] for t in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, sizes
        assert isinstance(cursor, str) and cursor
        if between is not None:
            await between()


# ---- GET /triggers/{id} ---------------------------------------------------------------


async def test_get_existing_trigger_returns_200_and_the_trigger(client: httpx.AsyncClient) -> None:
    created = await create(client, trigger_body("interval_scheduled", name="get me"))
    response = await client.get(f"{TRIGGERS}/{created['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == created


async def test_get_unknown_well_formed_id_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{TRIGGERS}/{UNKNOWN_ID}"), 404)


@pytest.mark.parametrize("trigger_id", ODD_IDS)
async def test_get_id_of_any_other_shape_is_404_problem(
    client: httpx.AsyncClient, trigger_id: str
) -> None:
    assert_problem(await client.get(f"{TRIGGERS}/{trigger_id}"), 404)


async def test_get_with_dot_segments_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{TRIGGERS}/../x"), 404)


# ---- GET /triggers --------------------------------------------------------------------


async def test_list_of_no_triggers_is_empty_with_null_cursor(client: httpx.AsyncClient) -> None:
    response = await client.get(TRIGGERS)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_returns_triggers_newest_first_as_full_trigger_objects(
    client: httpx.AsyncClient,
) -> None:
    created = [
        await create(client, trigger_body(kind))
        for kind in ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled")
    ]
    response = await client.get(TRIGGERS)
    assert response.status_code == 200
    assert response.json() == {"items": created[::-1], "next_cursor": None}


async def test_list_order_agrees_with_created_at_for_concurrent_creations(
    client: httpx.AsyncClient,
) -> None:
    await asyncio.gather(*(create(client, trigger_body(name=f"c{i}")) for i in range(100)))
    items = (await client.get(TRIGGERS, params={"limit": 100})).json()["items"]
    assert len(items) == 100
    created = [parse_time(t["created_at"]) for t in items]
    assert created == sorted(created, reverse=True), "list is not newest first by creation"


async def test_list_filters_by_type(client: httpx.AsyncClient) -> None:
    by_kind = {
        kind: (await create(client, trigger_body(kind)))["id"]
        for kind in ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled")
    }
    for kind, trigger_id in by_kind.items():
        page = (await client.get(TRIGGERS, params={"type": kind})).json()
        assert [t["id"] for t in page["items"]] == [trigger_id]
        assert page["next_cursor"] is None


async def test_list_filters_by_status_and_combines_filters(client: httpx.AsyncClient) -> None:
    paused_hook = (await create(client, trigger_body("webhook", status="paused")))["id"]
    active_hook = (await create(client, trigger_body("webhook")))["id"]
    paused_cron = (await create(client, trigger_body("cron_scheduled", status="paused")))["id"]

    async def ids(**params: str) -> list[str]:
        response = await client.get(TRIGGERS, params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert await ids(status="paused") == [paused_cron, paused_hook]
    assert await ids(status="active") == [active_hook]
    assert await ids(status="completed") == []
    assert await ids(status="paused", type="webhook") == [paused_hook]
    assert await ids(status="active", type="cron_scheduled") == []
    assert await ids(type="", status="") == [paused_cron, active_hook, paused_hook]


@pytest.mark.parametrize(
    ("name", "value"),
    [("type", "bogus"), ("type", "WEBHOOK"), ("status", "deleted"), ("status", "Active")],
)
async def test_list_with_unknown_filter_value_is_400_naming_the_parameter(
    client: httpx.AsyncClient, name: str, value: str
) -> None:
    assert_invalid(await client.get(TRIGGERS, params={name: value}), name)


async def test_list_limit_defaults_to_50(client: httpx.AsyncClient) -> None:
    ids = await _create_many(client, 51)
    page = (await client.get(TRIGGERS)).json()
    assert [t["id"] for t in page["items"]] == ids[::-1][:50]
    assert page["next_cursor"] is not None


async def test_list_limit_1_and_500_are_accepted(client: httpx.AsyncClient) -> None:
    ids = await _create_many(client, 3)
    one = (await client.get(TRIGGERS, params={"limit": 1})).json()
    assert [t["id"] for t in one["items"]] == [ids[-1]]
    assert one["next_cursor"] is not None
    most = await client.get(TRIGGERS, params={"limit": 500})
    assert most.status_code == 200
    assert [t["id"] for t in most.json()["items"]] == ids[::-1]


async def test_list_page_filled_exactly_has_no_next_cursor(client: httpx.AsyncClient) -> None:
    ids = await _create_many(client, 5)
    page = (await client.get(TRIGGERS, params={"limit": 5})).json()
    assert [t["id"] for t in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5", "1e2", "100000000000000000000"])
async def test_list_limit_out_of_range_or_not_a_number_is_400_on_limit(
    client: httpx.AsyncClient, limit: str
) -> None:
    assert_invalid(await client.get(TRIGGERS, params={"limit": limit}), "limit")


async def test_list_cursor_paging_returns_every_trigger_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    ids = await _create_many(client, 120)
    seen, sizes = await _all_pages(client, {"limit": 50})
    assert seen == ids[::-1]
    assert sizes == [50, 50, 20]


async def test_list_cursor_paging_is_stable_while_triggers_are_created(
    client: httpx.AsyncClient,
) -> None:
    ids = await _create_many(client, 120)
    added: list[str] = []

    async def create_more() -> None:
        for _ in range(3):
            added.append((await create(client, trigger_body(name="late")))["id"])

    seen, _ = await _all_pages(client, {"limit": 25}, between=create_more)
    assert seen == ids[::-1]
    assert added and not set(added) & set(seen)


async def test_list_cursor_paging_keeps_the_filter(client: httpx.AsyncClient) -> None:
    crons = []
    for i in range(12):
        await create(client, trigger_body("webhook", name=f"w{i}"))
        crons.append((await create(client, trigger_body("cron_scheduled", name=f"c{i}")))["id"])
    seen, sizes = await _all_pages(client, {"limit": 5, "type": "cron_scheduled"})
    assert seen == crons[::-1]
    assert sizes == [5, 5, 2]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "zzzz",
        "!!!",
        "%%%",
        "AAAA",  # base64 of three NUL bytes
        "aGVsbG8",  # base64 of "hello"
        "MDFBUlozTkRFS1RTVjRSUkZGUTY5RzVGQQ",  # base64 of a 25-character id
    ],
)
async def test_list_with_a_cursor_this_api_did_not_issue_is_400_on_cursor(
    client: httpx.AsyncClient, cursor: str
) -> None:
    await create(client, trigger_body())
    assert_invalid(await client.get(TRIGGERS, params={"cursor": cursor}), "cursor")
