"""Webhook calls read their trigger from a per-process cache, checked in the calls' own
transaction: every change made after a call has cached the trigger must show in the very
next call, as if nothing were cached. Each test warms the cache with one accepted call
first (the real API process over HTTP, the real database)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from eventtrigger.store.db import Database, read_json
from tests.api._support import TRIGGERS, assert_invalid, assert_problem, create, trigger_body


async def _warm(client: httpx.AsyncClient, anonymous: httpx.AsyncClient) -> dict[str, Any]:
    trigger = await create(client, trigger_body("webhook"))
    first = await anonymous.post(trigger["webhook_url"], json={"n": 1})
    assert first.status_code == 202, first.text
    return trigger


async def _events(db: Database, trigger_id: str) -> list[dict[str, Any]]:
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT id, request FROM event_logs WHERE trigger_id = %s ORDER BY id", (trigger_id,)
        )
    return [{"id": r["id"], "request": read_json(r["request"])} for r in rows]


async def test_a_cached_trigger_paused_since_refuses_the_next_call(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    trigger = await _warm(client, anonymous)
    paused = await client.patch(f"{TRIGGERS}/{trigger['id']}", json={"status": "paused"})
    assert paused.status_code == 200, paused.text

    assert_problem(await anonymous.post(trigger["webhook_url"], json={"n": 2}), 409)
    assert_problem(await anonymous.post(trigger["webhook_url"], content=b"{"), 409)

    assert len(await _events(db, trigger["id"])) == 1
    resumed = await client.patch(f"{TRIGGERS}/{trigger['id']}", json={"status": "active"})
    assert resumed.status_code == 200, resumed.text
    assert (await anonymous.post(trigger["webhook_url"], json={"n": 3})).status_code == 202


async def test_a_cached_trigger_deleted_since_answers_404_and_stores_nothing(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    trigger = await _warm(client, anonymous)
    assert (await client.delete(f"{TRIGGERS}/{trigger['id']}")).status_code == 204

    assert_problem(await anonymous.post(trigger["webhook_url"], json={"n": 2}), 404)
    # A call that is bad in itself gets the same 404 a fresh read gives, not a 400.
    not_json = await anonymous.post(
        trigger["webhook_url"], content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_problem(not_json, 404)

    assert len(await _events(db, trigger["id"])) == 1  # the warming call's only


async def test_a_schema_edited_since_is_the_one_the_next_call_meets(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    trigger = await _warm(client, anonymous)
    strict = {"type": "object", "required": ["order_id"]}
    edited = await client.patch(
        f"{TRIGGERS}/{trigger['id']}", json={"config": {**trigger["config"], "schema": strict}}
    )
    assert edited.status_code == 200, edited.text

    assert_invalid(await anonymous.post(trigger["webhook_url"], json={"n": 2}), "$")
    assert (await anonymous.post(trigger["webhook_url"], json={"order_id": 7})).status_code == 202

    # And loosened again: a body the cached (strict) schema refuses is accepted.
    loose = await client.patch(
        f"{TRIGGERS}/{trigger['id']}",
        json={"config": {**trigger["config"], "schema": {"type": "object"}}},
    )
    assert loose.status_code == 200, loose.text
    assert (await anonymous.post(trigger["webhook_url"], json={"n": 3})).status_code == 202


async def test_a_url_rotated_since_retires_the_cached_token_at_once(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    trigger = await _warm(client, anonymous)
    rotated = await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-webhook-url")
    assert rotated.status_code == 200, rotated.text

    assert_problem(await anonymous.post(trigger["webhook_url"], json={"n": 2}), 404)
    new_url = rotated.json()["webhook_url"]
    assert (await anonymous.post(new_url, json={"n": 3})).status_code == 202


async def test_a_secret_rotated_since_signs_the_next_call(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    trigger = await _warm(client, anonymous)
    rotated = await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != trigger["signing_secret"]

    assert (await anonymous.post(trigger["webhook_url"], json={"n": 2})).status_code == 202

    before, after = await _events(db, trigger["id"])
    assert before["request"]["signing_secret"] == trigger["signing_secret"]
    assert after["request"]["signing_secret"] == new_secret
    assert after["request"]["previous_signing_secret"] == trigger["signing_secret"]


async def test_concurrent_calls_around_a_pause_never_land_after_it(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    """Calls racing a pause: each is either stored (202) or refused (409), and every call
    sent after the pause was answered is refused."""
    trigger = await _warm(client, anonymous)

    async def call(n: int) -> int:
        return (await anonymous.post(trigger["webhook_url"], json={"n": n})).status_code

    racing = [asyncio.create_task(call(n)) for n in range(50)]
    paused = await client.patch(f"{TRIGGERS}/{trigger['id']}", json={"status": "paused"})
    assert paused.status_code == 200, paused.text
    after = await asyncio.gather(*(call(n) for n in range(50, 80)))
    during = await asyncio.gather(*racing)

    assert set(during) <= {202, 409}
    assert set(after) == {409}
    assert len(await _events(db, trigger["id"])) == 1 + during.count(202)
