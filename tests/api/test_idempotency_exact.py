"""Idempotency-Key matching is exact: keys that differ only in letter case are two keys
(the real API process over HTTP, the real database)."""

from __future__ import annotations

import httpx

from eventtrigger.store.db import Database
from tests.api._support import create, trigger_body


async def _call(anonymous: httpx.AsyncClient, url: str, key: str) -> httpx.Response:
    return await anonymous.post(url, json={"order": 1}, headers={"Idempotency-Key": key})


async def test_keys_that_differ_only_in_case_are_two_keys(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    url = trigger["webhook_url"]

    upper = await _call(anonymous, url, "Order-1")
    lower = await _call(anonymous, url, "order-1")
    assert upper.status_code == 202, upper.text
    assert lower.status_code == 202, lower.text
    assert lower.json()["event_id"] != upper.json()["event_id"]

    # A repeat of either key is answered with its own first event, not the other's.
    again_upper = await _call(anonymous, url, "Order-1")
    again_lower = await _call(anonymous, url, "order-1")
    assert (again_upper.status_code, again_upper.json()["event_id"]) == (
        200,
        upper.json()["event_id"],
    )
    assert (again_lower.status_code, again_lower.json()["event_id"]) == (
        200,
        lower.json()["event_id"],
    )
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT id FROM event_logs WHERE trigger_id = %s", (trigger["id"],)
        )
    assert {r["id"] for r in rows} == {upper.json()["event_id"], lower.json()["event_id"]}
