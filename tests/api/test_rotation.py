"""Webhook URL tokens and their rotation, signing-secret rotation (contract v1.1): the real
API process over HTTP, the real database."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.store.db import Database
from eventtrigger.store.migrate import discover
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
from tests.process import EventtriggerProcess

TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # 24 random bytes, base64url


def _token(trigger: dict[str, Any]) -> str:
    return str(trigger["webhook_url"].rsplit("/", 1)[1])


async def _fire(anonymous: httpx.AsyncClient, url: str) -> httpx.Response:
    return await anonymous.post(url, json={"order_id": 1})


async def test_webhook_url_ends_in_a_random_token_unrelated_to_the_id(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, server: EventtriggerProcess
) -> None:
    first = await create(client, trigger_body("webhook"))
    second = await create(client, trigger_body("webhook"))
    for trigger in (first, second):
        assert trigger["webhook_url"].startswith(f"{server.base_url}/api/v1/webhook/")
        assert TOKEN.fullmatch(_token(trigger)), trigger["webhook_url"]
        assert trigger["id"] not in trigger["webhook_url"]
    assert _token(first) != _token(second)
    assert (await _fire(anonymous, first["webhook_url"])).status_code == 202
    # The id alone fires nothing: ids are in logs, events and Kafka keys.
    assert_problem(await _fire(anonymous, f"/api/v1/webhook/{first['id']}"), 404)
    got = await client.get(f"{TRIGGERS}/{first['id']}")
    assert got.json()["webhook_url"] == first["webhook_url"]  # shown again, unchanged
    listed = (await client.get(TRIGGERS)).json()["items"]
    assert {t["webhook_url"] for t in listed} == {first["webhook_url"], second["webhook_url"]}


async def test_rotating_the_webhook_url_retires_the_old_one_at_once(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    old_url = trigger["webhook_url"]

    response = await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-webhook-url")

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["webhook_url"] != old_url and TOKEN.fullmatch(_token(rotated))
    unchanged = ("id", "name", "type", "status", "config", "signing_secret", "created_at")
    assert {k: rotated[k] for k in unchanged} == {k: trigger[k] for k in unchanged}
    no_longer = assert_problem(await _fire(anonymous, old_url), 404)
    assert _token(trigger) not in no_longer["detail"]  # a token is never echoed either
    assert (await _fire(anonymous, rotated["webhook_url"])).status_code == 202
    got = (await client.get(f"{TRIGGERS}/{trigger['id']}")).json()
    assert got["webhook_url"] == rotated["webhook_url"]


async def test_a_trigger_made_before_tokens_keeps_its_id_url_until_rotated(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, db: Database
) -> None:
    """Migration 0004 gives existing webhook triggers token = id: their URLs still work."""
    trigger = await create(client, trigger_body("webhook"))
    scheduled = await create(client, trigger_body("interval_scheduled"))
    async with db.transaction() as tx:  # as the row was before 0004
        await tx.execute("UPDATE triggers SET webhook_token = NULL")
    (migration,) = [m for m in discover() if m.version == 4]
    async with db.transaction() as tx:
        await tx.execute(migration.statements[-1])  # 0004's backfill, as `migrate` runs it

    got = (await client.get(f"{TRIGGERS}/{trigger['id']}")).json()
    assert got["webhook_url"].endswith(f"/api/v1/webhook/{trigger['id']}")
    assert "webhook_url" not in (await client.get(f"{TRIGGERS}/{scheduled['id']}")).json()
    assert (await _fire(anonymous, got["webhook_url"])).status_code == 202
    rotated = (await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-webhook-url")).json()
    assert trigger["id"] not in rotated["webhook_url"]
    assert_problem(await _fire(anonymous, got["webhook_url"]), 404)


@pytest.mark.parametrize("action", ["rotate-webhook-url", "rotate-secret"])
@pytest.mark.parametrize("trigger_id", [UNKNOWN_ID, *ODD_IDS])
async def test_rotating_an_unknown_trigger_is_a_404_problem(
    client: httpx.AsyncClient, action: str, trigger_id: str
) -> None:
    assert_problem(await client.post(f"{TRIGGERS}/{trigger_id}/{action}"), 404)


@pytest.mark.parametrize("action", ["rotate-webhook-url", "rotate-secret"])
async def test_rotating_needs_an_api_key(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, action: str
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    assert_problem(await anonymous.post(f"{TRIGGERS}/{trigger['id']}/{action}"), 401)
    assert (await client.get(f"{TRIGGERS}/{trigger['id']}")).json() == trigger  # untouched


async def test_a_scheduled_trigger_has_no_webhook_url_to_rotate(client: httpx.AsyncClient) -> None:
    trigger = await create(client, trigger_body("cron_scheduled"))
    body = assert_problem(await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-webhook-url"), 409)
    assert "cron_scheduled" in body["detail"]


@pytest.mark.parametrize(
    ("body", "grace"),
    [
        (None, timedelta(hours=24)),  # no body at all
        ({}, timedelta(hours=24)),
        ({"grace": "2s"}, timedelta(seconds=2)),
        ({"grace": "0s"}, timedelta(0)),
        ({"grace": "7d"}, timedelta(days=7)),
    ],
)
async def test_rotate_secret_answers_the_new_secret_and_when_the_old_one_stops(
    client: httpx.AsyncClient, body: dict[str, Any] | None, grace: timedelta
) -> None:
    trigger = await create(client, trigger_body("time_scheduled"))
    before = datetime.now(UTC)

    response = await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-secret", json=body)

    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"signing_secret", "previous_secret_expires_at"}
    assert answer["signing_secret"].startswith("whsec_")
    assert answer["signing_secret"] != trigger["signing_secret"]
    expires = parse_time(answer["previous_secret_expires_at"])
    assert before + grace - timedelta(seconds=1) <= expires <= after + grace + timedelta(seconds=1)
    got = (await client.get(f"{TRIGGERS}/{trigger['id']}")).json()
    assert got["signing_secret"] == answer["signing_secret"]
    assert got["next_fire_at"] == trigger["next_fire_at"]  # the schedule is untouched


async def test_rotate_secret_with_an_empty_octet_stream_body_uses_the_default(
    client: httpx.AsyncClient,
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    response = await client.post(
        f"{TRIGGERS}/{trigger['id']}/rotate-secret",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace": "8d"}, "grace"),
        ({"grace": "7d1s"}, "grace"),
        ({"grace": "-1s"}, "grace"),
        ({"grace": "soon"}, "grace"),
        ({"grace": None}, "grace"),
        ({"grace": True}, "grace"),
        ({"grace": "1h", "grase": "2h"}, "grase"),
        ([], ""),
    ],
)
async def test_a_bad_grace_is_a_400_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    assert_invalid(await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-secret", json=body), field)
    assert (await client.get(f"{TRIGGERS}/{trigger['id']}")).json() == trigger


async def test_rotate_secret_refuses_a_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    trigger = await create(client, trigger_body("webhook"))
    url = f"{TRIGGERS}/{trigger['id']}/rotate-secret"
    assert_problem(await client.post(url, content=b"grace=1h"), 415)
    json_type = {"Content-Type": "application/json"}
    assert_problem(await client.post(url, content=b"{grace", headers=json_type), 400)


async def test_the_access_log_never_holds_a_webhook_token(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, server: EventtriggerProcess
) -> None:
    trigger = await create(client, trigger_body("webhook"))
    token = _token(trigger)
    rotated = (await client.post(f"{TRIGGERS}/{trigger['id']}/rotate-webhook-url")).json()
    paths = [
        f"/api/v1/webhook/{token}",  # retired: 404
        rotated["webhook_url"],  # 202
        f"/api/v1/webhook/{_token(rotated)}/extra",  # no such route
        f"/api/v1/webhook//{_token(rotated)}",
        f"/API/V1/WEBHOOK/{_token(rotated)}",
    ]
    for path in paths:
        await _fire(anonymous, path)
    await anonymous.get(rotated["webhook_url"])  # 405
    marker = f"/api/v1/triggers/{trigger['id']}/marker"
    await client.get(marker)  # written after the calls above: the log has caught up

    def logged() -> str:
        return server.log_path.read_text()

    await _wait_for(lambda: marker in logged())
    text = logged()
    assert "/api/v1/webhook/{token}" in text
    assert token not in text and _token(rotated) not in text
    assert trigger["signing_secret"] not in text


async def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.05)
