"""The audit trail over the real `--roles=api` process and the real database: every
management change writes exactly one row (key, action, target, request id, field names)
in its own transaction, a refused change writes none, GET /api/v1/audit pages newest
first with complete cursors and filters, and no secret value ever reaches a row."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.domain.audit import audit_entry
from eventtrigger.ids import new_id
from eventtrigger.roles.api.principal import Principal
from eventtrigger.store import audit
from eventtrigger.store.db import Database, read_json
from tests.api._support import (
    TRIGGERS,
    UNKNOWN_ID,
    assert_invalid,
    assert_problem,
    create,
    parse_time,
    trigger_body,
)
from tests.api.test_events_api import add
from tests.process import EventtriggerProcess

AUDIT = "/api/v1/audit"
WRITER_SCOPES = ["triggers:read", "triggers:write", "events:read", "events:write"]


@dataclass
class Actor:
    """A client acting as one key, and the identity its audit rows must carry."""

    client: httpx.AsyncClient
    key_id: str
    key_name: str


@pytest.fixture
async def clean(db: Database) -> Database:
    async with db.connection() as tx:
        await tx.execute("DELETE FROM audit_log")
    return db


@pytest.fixture
async def actor(
    client: httpx.AsyncClient, server: EventtriggerProcess, clean: Database
) -> AsyncIterator[Actor]:
    """A managed key with the trigger and event scopes: rows must carry its id and name."""
    made = await client.post(
        "/api/v1/keys",
        json={"name": f"auditor {secrets.token_hex(3)}", "scopes": WRITER_SCOPES},
    )
    assert made.status_code == 201, made.text
    key = made.json()
    async with clean.connection() as tx:  # the key's own key.create row: not under test
        await tx.execute("DELETE FROM audit_log")
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key['key']}"}, timeout=10
    ) as c:
        yield Actor(c, key["id"], key["name"])


async def _rows(db: Database) -> list[dict[str, Any]]:
    """Every audit row straight from the table, newest first, fields decoded."""
    async with db.connection() as tx:
        rows = await tx.fetch_all("SELECT * FROM audit_log ORDER BY at DESC, id DESC")
    for row in rows:
        row["fields"] = read_json(row["fields"])
    return rows


async def _listed(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every row the API lists for `params`, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        answer = await client.get(AUDIT, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"items", "next_cursor"}
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["before"] = page["next_cursor"]


def _request_id() -> str:
    return f"test-{secrets.token_hex(6)}"


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None, status: int = 200
) -> tuple[httpx.Response, str]:
    """`method path` with a fresh X-Request-Id; the response (of `status`) and that id."""
    rid = _request_id()
    kwargs: dict[str, Any] = {"headers": {"X-Request-Id": rid}}
    if body is not None:
        kwargs["json"] = body
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == rid
    return response, rid


def _shape(item: dict[str, Any]) -> tuple[str, str | None, str | None, list[str]]:
    return item["action"], item["target_id"], item["request_id"], item["fields"]


async def test_each_trigger_change_writes_one_row_signed_by_its_key(
    actor: Actor, client: httpx.AsyncClient
) -> None:
    c = actor.client
    made, r_create = await _call(c, "POST", TRIGGERS, trigger_body("webhook", name="a"), 201)
    tid = made.json()["id"]
    path = f"{TRIGGERS}/{tid}"
    _, r_rename = await _call(c, "PATCH", path, {"name": "b"})
    _, r_pause = await _call(c, "PATCH", path, {"status": "paused"})
    _, r_resume = await _call(c, "PATCH", path, {"status": "active"})
    config = {**made.json()["config"], "endpoint": "https://example.com/other", "timeout": "5s"}
    _, r_edit = await _call(c, "PATCH", path, {"name": "c", "config": config})
    _, r_secret = await _call(c, "POST", f"{path}/rotate-secret", {"grace": "1h"})
    _, r_url = await _call(c, "POST", f"{path}/rotate-webhook-url")
    _, r_delete = await _call(c, "DELETE", path, status=204)

    items = await _listed(client, target_id=tid)

    assert [_shape(i) for i in items] == [
        ("trigger.delete", tid, r_delete, []),
        ("trigger.rotate_webhook_url", tid, r_url, ["webhook_url"]),
        (
            "trigger.rotate_secret",
            tid,
            r_secret,
            ["previous_secret_expires_at", "previous_signing_secret", "signing_secret"],
        ),
        ("trigger.update", tid, r_edit, ["config.endpoint", "config.timeout", "name"]),
        ("trigger.resume", tid, r_resume, ["status"]),
        ("trigger.pause", tid, r_pause, ["status"]),
        ("trigger.update", tid, r_rename, ["name"]),
        (
            "trigger.create",
            tid,
            r_create,
            sorted(["name", "type", "status", *(f"config.{k}" for k in made.json()["config"])]),
        ),
    ]
    assert {(i["key_id"], i["key_name"]) for i in items} == {(actor.key_id, actor.key_name)}
    times = [parse_time(i["at"]) for i in items]
    assert times == sorted(times, reverse=True)


async def test_a_scheduled_trigger_s_pause_and_config_edit_are_named(
    actor: Actor, client: httpx.AsyncClient
) -> None:
    made = await create(actor.client, trigger_body("cron_scheduled", cron="*/5 * * * *"))
    path = f"{TRIGGERS}/{made['id']}"
    await _call(actor.client, "PATCH", path, {"status": "paused"})
    config = {**made["config"], "cron": "0 * * * *"}
    await _call(actor.client, "PATCH", path, {"status": "active", "config": config})

    items = await _listed(client, target_id=made["id"])

    assert [(i["action"], i["fields"]) for i in items[:2]] == [
        ("trigger.update", ["config.cron", "status"]),
        ("trigger.pause", ["status"]),
    ]


async def test_replays_write_one_row_each(
    actor: Actor, client: httpx.AsyncClient, clean: Database
) -> None:
    original = await add(clean, timedelta(minutes=5), trigger_id=UNKNOWN_ID, status="failure")
    replayed, r_one = await _call(
        actor.client, "POST", f"/api/v1/events/{original.id}/replay", status=202
    )
    body = {"trigger_id": UNKNOWN_ID, "status": "failure"}
    bulk, r_bulk = await _call(actor.client, "POST", "/api/v1/events/replay", body, 202)
    assert len(bulk.json()["event_ids"]) == 1
    # A bulk replay that matched nothing was still asked for: it is audited too.
    none, r_none = await _call(
        actor.client, "POST", "/api/v1/events/replay", {"status": "retrying"}, 202
    )
    assert none.json() == {"event_ids": []}

    items = await _listed(client)

    assert [_shape(i) for i in items] == [
        ("events.bulk_replay", None, r_none, ["status"]),
        ("events.bulk_replay", UNKNOWN_ID, r_bulk, ["status", "trigger_id"]),
        ("event.replay", original.id, r_one, []),
    ]
    assert replayed.json()["event_id"] not in str(items)  # the new event: not the target
    assert {(i["key_id"], i["key_name"]) for i in items} == {(actor.key_id, actor.key_name)}


async def test_refused_changes_write_no_row(actor: Actor, clean: Database) -> None:
    c = actor.client
    cron = await create(c, trigger_body("cron_scheduled"))
    path = f"{TRIGGERS}/{cron['id']}"
    before = await _rows(clean)
    assert len(before) == 1

    assert_invalid(await c.post(TRIGGERS, json={"name": "x"}), "type")
    assert_invalid(
        await c.patch(path, json={"config": {**cron["config"], "cron": "61 * * * *"}}),
        "config.cron",
    )
    assert_invalid(await c.patch(path, json={"status": "sleeping"}), "status")
    assert_invalid(await c.post(f"{path}/rotate-secret", json={"grace": "forever"}), "grace")
    assert_problem(await c.post(f"{path}/rotate-webhook-url"), 409)  # not a webhook trigger
    assert_problem(await c.delete(f"{TRIGGERS}/{UNKNOWN_ID}"), 404)
    assert_problem(await c.patch(f"{TRIGGERS}/{UNKNOWN_ID}", json={"name": "n"}), 404)
    assert_problem(await c.post(f"{TRIGGERS}/{UNKNOWN_ID}/rotate-secret"), 404)
    assert_problem(await c.post(f"/api/v1/events/{UNKNOWN_ID}/replay"), 404)
    assert_invalid(await c.post("/api/v1/events/replay", json={}), "trigger_id")

    assert await _rows(clean) == before
    assert (await c.get(path)).json()["config"] == cron["config"]  # nothing changed either


async def test_a_change_whose_row_cannot_be_written_is_not_made(clean: Database) -> None:
    """The row and the change share a transaction: when the row fails (a key id too long
    for its column), the trigger is not created either."""
    from eventtrigger.store.triggers import TriggerStore

    now = datetime.now(UTC)
    store = TriggerStore(clean)
    bad = Principal(key_id="k" * 300, key_name="too long an id", scopes=frozenset())
    trigger_id = new_id(now)
    with pytest.raises(Exception, match="key_id"):
        await store.create(
            trigger_id=trigger_id,
            name="rolled back",
            kind="webhook",
            status="active",
            config={"endpoint": "https://example.com"},
            signing_secret="whsec_" + "A" * 44,
            first_fire=None,
            now=now,
            webhook_token=secrets.token_urlsafe(24),
            audit=audit_entry(bad, "trigger.create", trigger_id, None, ["name"], at=now),
        )
    assert await store.get(trigger_id) is None
    assert await _rows(clean) == []


async def test_a_patch_whose_row_fails_is_rolled_back_whole(
    client: httpx.AsyncClient, clean: Database
) -> None:
    """Forced rollback: the PATCH's UPDATE has run when its audit row fails, and the
    transaction keeps neither the change nor a row."""
    from eventtrigger.clock import SystemClock
    from eventtrigger.domain.triggers import PatchPlan
    from eventtrigger.store.triggers import apply_patch

    made = await create(client, trigger_body("webhook", name="kept"))
    rows = await _rows(clean)

    def decide(row: dict[str, Any], now: datetime) -> PatchPlan:
        return PatchPlan("renamed", row["status"], row["config"], int(row["version"]), False, None)

    class Boom(Exception):
        pass

    def exploding_audit(row: dict[str, Any], plan: PatchPlan, now: datetime) -> Any:
        raise Boom

    with pytest.raises(Boom):
        await apply_patch(clean, made["id"], decide, SystemClock(), exploding_audit)
    assert (await client.get(f"{TRIGGERS}/{made['id']}")).json()["name"] == "kept"
    assert await _rows(clean) == rows


async def _write(
    db: Database, n: int, at: datetime, key_id: str = "k1", key_name: str = "one", target: str = "T"
) -> None:
    """`n` rows at `at`, written as the API writes them."""
    principal = Principal(key_id=key_id, key_name=key_name, scopes=frozenset())
    async with db.transaction() as tx:
        for _ in range(n):
            entry = audit_entry(principal, "trigger.delete", target, None, [], at=at)
            await audit.record(tx, entry)


async def test_paging_is_complete_and_ordered_even_within_one_instant(
    client: httpx.AsyncClient, clean: Database
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await _write(clean, 5, now)  # five rows at the very same instant: ties broken by id
    await _write(clean, 4, now - timedelta(seconds=1))
    await _write(clean, 3, now + timedelta(seconds=1))
    expected = [r["id"] for r in await _rows(clean)]

    pages: list[list[str]] = []
    query: dict[str, Any] = {"limit": 2}
    while True:
        page = (await client.get(AUDIT, params=query)).json()
        pages.append([i["id"] for i in page["items"]])
        if not page["next_cursor"]:
            break
        query["before"] = page["next_cursor"]

    assert [len(p) for p in pages] == [2, 2, 2, 2, 2, 2]
    assert [i for p in pages for i in p] == expected
    assert len(set(expected)) == 12
    # The default page is 50, the largest 200.
    assert len((await client.get(AUDIT)).json()["items"]) == 12


async def test_before_a_time_lists_strictly_older_rows(
    client: httpx.AsyncClient, clean: Database
) -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    await _write(clean, 1, t0, target="OLD")
    await _write(clean, 1, t0 + timedelta(seconds=1), target="EDGE")
    await _write(clean, 1, t0 + timedelta(seconds=2), target="NEW")

    edge = (t0 + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    listed = await _listed(client, before=edge)

    assert [i["target_id"] for i in listed] == ["OLD"]
    assert listed[0]["at"] == "2026-01-01T12:00:00Z"


async def test_filters_by_target_and_by_key(client: httpx.AsyncClient, clean: Database) -> None:
    now = datetime.now(UTC)
    await _write(clean, 2, now, key_id="k1", key_name="one", target="A")
    await _write(clean, 3, now, key_id="k2", key_name="two", target="A")
    await _write(clean, 4, now, key_id="k2", key_name="two", target="B")

    assert len(await _listed(client, target_id="A")) == 5
    assert {i["key_id"] for i in await _listed(client, key_id="k2")} == {"k2"}
    assert len(await _listed(client, key_id="k2")) == 7
    both = await _listed(client, key_id="k2", target_id="A", limit=1)
    assert len(both) == 3 and {(i["key_id"], i["target_id"]) for i in both} == {("k2", "A")}
    assert await _listed(client, target_id="nothing-here") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "last tuesday"}, "before"),
        ({"before": "2026-12-07T10:00:00"}, "before"),
        ({"target_id": "ü"}, "target_id"),
        ({"key_id": "x" * 200}, "key_id"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert_invalid(await client.get(AUDIT, params=params), field)


async def test_the_trail_needs_the_admin_scope(
    client: httpx.AsyncClient, server: EventtriggerProcess, anonymous: httpx.AsyncClient
) -> None:
    assert_problem(await anonymous.get(AUDIT), 401)
    made = await client.post(
        "/api/v1/keys", json={"name": "no admin", "scopes": [*WRITER_SCOPES, "keys:admin"]}
    )
    assert made.status_code == 201, made.text
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"X-API-Key": made.json()["key"]}, timeout=10
    ) as weaker:
        refused = assert_problem(await weaker.get(AUDIT), 403)
    assert "admin" in refused["detail"]


async def test_no_secret_value_ever_reaches_a_row(actor: Actor, clean: Database) -> None:
    c = actor.client
    header_secret = f"Bearer {secrets.token_hex(16)}"
    made = await create(
        c, trigger_body("webhook", headers={"Authorization": header_secret}, name="s3cr3t-name")
    )
    path = f"{TRIGGERS}/{made['id']}"
    rotated = (await c.post(f"{path}/rotate-secret", json={"grace": "1h"})).json()
    new_url = (await c.post(f"{path}/rotate-webhook-url")).json()["webhook_url"]
    other_secret = f"Bearer {secrets.token_hex(16)}"
    config = {**made["config"], "headers": {"Authorization": other_secret}}
    assert (await c.patch(path, json={"config": config})).status_code == 200

    async with clean.connection() as tx:
        raw = await tx.fetch_all("SELECT * FROM audit_log")
    text = repr(raw)

    assert len(raw) == 4
    for value in (
        made["signing_secret"],
        rotated["signing_secret"],
        made["webhook_url"].rsplit("/", 1)[1],
        new_url.rsplit("/", 1)[1],
        header_secret,
        other_secret,
        "s3cr3t-name",
    ):
        assert value not in text
    assert "config.headers" in text  # the name of what changed is there


async def test_a_generated_request_id_is_the_one_recorded(
    actor: Actor, client: httpx.AsyncClient
) -> None:
    """Without an X-Request-Id the middleware makes one; the row holds that one."""
    made = await actor.client.post(TRIGGERS, json=trigger_body("webhook"))
    assert made.status_code == 201
    [item] = await _listed(client, target_id=made.json()["id"])
    assert item["request_id"] == made.headers["x-request-id"]


async def test_key_create_and_revoke_write_one_row_each(
    client: httpx.AsyncClient, clean: Database
) -> None:
    me = (await client.get("/api/v1/keys/self")).json()
    made, r_create = await _call(
        client, "POST", "/api/v1/keys", {"name": "short-lived", "scopes": ["events:read"]}, 201
    )
    key_id = made.json()["id"]
    _, r_revoke = await _call(client, "DELETE", f"/api/v1/keys/{key_id}", status=204)

    items = await _listed(client, target_id=key_id)

    assert [_shape(i) for i in items] == [
        ("key.revoke", key_id, r_revoke, []),
        ("key.create", key_id, r_create, ["name", "scopes"]),
    ]
    assert {(i["key_id"], i["key_name"]) for i in items} == {(me["id"], me["name"])}
    assert made.json()["key"] not in repr(await _rows(clean))
