"""Managed API keys over the real API: scopes on every route, create/list/revoke, the key
shown once, expiry, last_used_at, bootstrap keys in the list, refusals counted."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventtrigger.domain import keys as domain
from eventtrigger.ids import new_id
from eventtrigger.roles.api.auth import ANY_KEY, ROUTE_SCOPES
from eventtrigger.roles.api.principal import SCOPES
from eventtrigger.store import keys as store
from eventtrigger.store.db import Database
from tests.api._support import UNKNOWN_ID, assert_invalid, assert_problem, iso, parse_time
from tests.conftest import TEST_API_KEY

KEYS = "/api/v1/keys"


@pytest.fixture
async def keydb(db: Database) -> AsyncIterator[Database]:
    """The emptied test database, without managed keys too."""
    async with db.connection() as tx:
        await tx.execute("DELETE FROM api_keys")
    yield db


async def make_key(client: httpx.AsyncClient, *scopes: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(KEYS, json={"name": extra.pop("name", "k"), "scopes": scopes})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def as_key(client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


async def count_rows(db: Database) -> int:
    async with db.connection() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM api_keys")
    assert row is not None
    return int(row["n"])


async def failures(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "eventtrigger_auth_failures"
        for sample in family.samples
        if sample.name == "eventtrigger_auth_failures_total"
    }


def _call(method: str, path: str) -> tuple[str, str, Any]:
    filled = re.sub(r"\{[a-z_]+\}", UNKNOWN_ID, path)
    return method, filled, ({} if method in ("POST", "PATCH") else None)


ROUTES = sorted(ROUTE_SCOPES.items())
ROUTE_IDS = [f"{m} {p}" for (m, p), _ in ROUTES]


# ---- scopes on every route ---------------------------------------------------------------


@pytest.mark.parametrize(("route", "scope"), ROUTES, ids=ROUTE_IDS)
async def test_every_route_refuses_a_key_without_its_scope_and_admits_one_with_it(
    client: httpx.AsyncClient, keydb: Database, route: tuple[str, str], scope: str
) -> None:
    method, path, body = _call(*route)
    if scope != ANY_KEY:
        unrelated = next(s for s in SCOPES if s not in (scope, "admin"))
        lacking = await make_key(client, unrelated)
        async with as_key(client, lacking["key"]) as other:
            refused = await other.request(method, path, json=body)
        problem = assert_problem(refused, 403)
        assert scope in problem["detail"]
    holding = await make_key(client, "events:read" if scope == ANY_KEY else scope)
    async with as_key(client, holding["key"]) as allowed:
        answered = await allowed.request(method, path, json=body)
    assert answered.status_code not in (401, 403), (answered.status_code, answered.text)


async def test_an_admin_key_holds_every_scope(client: httpx.AsyncClient, keydb: Database) -> None:
    admin = await make_key(client, "admin")
    async with as_key(client, admin["key"]) as c:
        for (method, raw_path), _ in ROUTES:
            _, path, body = _call(method, raw_path)
            answered = await c.request(method, path, json=body)
            assert answered.status_code not in (401, 403), (method, path, answered.text)


async def test_a_refused_scope_is_counted_and_changes_nothing(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    reader = await make_key(client, "triggers:read")
    before = await failures(client)
    async with as_key(client, reader["key"]) as c:
        refused = await c.post(KEYS, json={"name": "mine", "scopes": ["admin"]})
    assert_problem(refused, 403)
    assert await count_rows(keydb) == 1
    assert (await failures(client))["scope"] == before["scope"] + 1


# ---- create, list, revoke ----------------------------------------------------------------


async def test_create_list_revoke_round_trip(client: httpx.AsyncClient, keydb: Database) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = await client.post(
        KEYS, json={"name": "deploy bot", "scopes": ["triggers:write"], "expires_at": iso(expires)}
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert set(made) == {"id", "name", "scopes", "key", "prefix", "created_at", "expires_at"}
    assert re.fullmatch(r"etk_[a-z2-7]{52}", made["key"])
    assert made["prefix"] == made["key"][:8]
    assert made["name"] == "deploy bot" and made["scopes"] == ["triggers:write"]
    assert parse_time(made["expires_at"]) == expires
    assert response.headers["location"] == f"{KEYS}/{made['id']}"

    listed = (await client.get(KEYS)).json()["items"]
    mine = [k for k in listed if k["id"] == made["id"]]
    assert mine == [
        {
            "id": made["id"],
            "name": "deploy bot",
            "scopes": ["triggers:write"],
            "prefix": made["prefix"],
            "created_at": made["created_at"],
            "expires_at": made["expires_at"],
            "last_used_at": None,
            "bootstrap": False,
        }
    ]

    async with as_key(client, made["key"]) as c:
        assert (await c.get("/api/v1/triggers")).status_code == 403  # write is not read
        assert (await c.post("/api/v1/triggers", json={})).status_code == 400  # admitted
        assert (await client.delete(f"{KEYS}/{made['id']}")).status_code == 204
        gone = await c.post("/api/v1/triggers", json={})
        assert "revoked" in assert_problem(gone, 401)["detail"]
    assert made["id"] not in {k["id"] for k in (await client.get(KEYS)).json()["items"]}
    # Permanent: revoking again finds no key to revoke.
    assert_problem(await client.delete(f"{KEYS}/{made['id']}"), 404)


async def test_the_key_is_shown_once_and_never_stored(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    made = await make_key(client, "events:read")
    listing = (await client.get(KEYS)).text
    assert made["key"] not in listing
    async with as_key(client, made["key"]) as c:
        own = await c.get(f"{KEYS}/self")
    assert made["key"] not in own.text
    async with keydb.connection() as tx:
        row = await tx.fetch_one("SELECT * FROM api_keys WHERE id = %s", (made["id"],))
    assert row is not None
    for value in row.values():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        assert made["key"] not in text
    assert row["key_hash"] == domain.key_hash(made["key"])


async def test_self_names_the_calling_key(client: httpx.AsyncClient, keydb: Database) -> None:
    made = await make_key(client, "events:read", "triggers:read", name="console")
    async with as_key(client, made["key"]) as c:
        own = await c.get(f"{KEYS}/self")
    assert own.status_code == 200
    assert own.json() == {
        "id": made["id"],
        "name": "console",
        "scopes": ["events:read", "triggers:read"],
        "prefix": made["prefix"],
        "bootstrap": False,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "scopes": ["root"]}, "scopes[0]"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"scopes": ["admin"]}, "name"),
        ({"name": "n", "scopes": []}, "scopes"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "next week"}, "expires_at"),
        ({"name": "n", "scopes": ["admin"], "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ],
)
async def test_bad_create_input_is_a_400_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, keydb: Database, body: dict[str, Any], field: str
) -> None:
    assert_invalid(await client.post(KEYS, json=body), field)
    assert await count_rows(keydb) == 0


async def test_a_body_that_is_not_json_is_refused_without_a_500(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    assert_problem(
        await client.post(KEYS, content=b"{", headers={"content-type": "application/json"}), 400
    )
    assert_problem(await client.post(KEYS, json=["admin"]), 400)
    assert await count_rows(keydb) == 0


async def test_a_key_grants_only_scopes_it_holds(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    manager = await make_key(client, "keys:admin")
    async with as_key(client, manager["key"]) as c:
        assert_problem(await c.post(KEYS, json={"name": "up", "scopes": ["admin"]}), 403)
        reader = await c.post(KEYS, json={"name": "reader", "scopes": ["triggers:read"]})
        made = await c.post(KEYS, json={"name": "peer", "scopes": ["keys:admin"]})
    assert_problem(reader, 403)
    assert "triggers:read" in reader.json()["detail"]
    assert made.status_code == 201, made.text
    assert await count_rows(keydb) == 2  # the manager and its peer: nothing for a refusal


async def test_revoking_an_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    assert_problem(await client.delete(f"{KEYS}/{UNKNOWN_ID}"), 404)
    assert_problem(await client.delete(f"{KEYS}/nope"), 404)


# ---- expiry ------------------------------------------------------------------------------


async def test_an_expired_key_is_refused_as_expired(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    now = datetime.now(UTC)
    key = domain.new_key()
    stored = domain.StoredKey(
        id=new_id(now - timedelta(days=2)),
        name="old",
        scopes=frozenset({"admin"}),
        prefix=domain.prefix_of(key),
        created_at=now - timedelta(days=2),
        expires_at=now - timedelta(seconds=1),
        last_used_at=None,
        revoked_at=None,
    )
    await keydb.run(lambda tx: store.insert(tx, stored, domain.key_hash(key)))
    before = await failures(client)
    async with as_key(client, key) as c:
        refused = await c.get("/api/v1/triggers")
    assert "expired" in assert_problem(refused, 401)["detail"]
    assert (await failures(client))["expired"] == before["expired"] + 1
    # Listed (so it can be seen and revoked) until it is revoked.
    assert stored.id in {k["id"] for k in (await client.get(KEYS)).json()["items"]}


# ---- last_used_at ------------------------------------------------------------------------


async def test_last_used_at_is_set_within_5_seconds_of_the_first_use(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    made = await make_key(client, "triggers:read")

    async def last_used() -> str | None:
        items = (await client.get(KEYS)).json()["items"]
        value: str | None = next(k for k in items if k["id"] == made["id"])["last_used_at"]
        return value

    assert await last_used() is None
    async with as_key(client, made["key"]) as c:
        before = datetime.now(UTC)
        used_at = time.monotonic()
        assert (await c.get("/api/v1/triggers")).status_code == 200
    while (seen := await last_used()) is None:
        assert time.monotonic() - used_at < 5.0, "last_used_at not written within 5 s"
        await asyncio.sleep(0.1)
    assert before - timedelta(seconds=1) <= parse_time(seen) <= datetime.now(UTC)
    # The writer is a loop of the api role with its own heartbeat, so /health would name
    # it if it stalled.
    health = (await client.get("/health")).json()
    assert "key-usage" in health["roles"]["api"]["loops"]
    assert health["roles"]["api"]["loops"]["key-usage"] < 30


# ---- bootstrap keys ----------------------------------------------------------------------


async def test_bootstrap_keys_are_listed_as_admin_and_cannot_be_revoked_here(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    response = await client.get(KEYS)
    assert TEST_API_KEY not in response.text
    [boot] = [k for k in response.json()["items"] if k["bootstrap"]]
    assert re.fullmatch(r"bootstrap_[0-9a-f]{8}", boot["id"])
    assert boot["id"] == domain.bootstrap_id(TEST_API_KEY)
    assert boot["scopes"] == ["admin"]
    assert boot["prefix"] == TEST_API_KEY[:3] + "..."
    own = (await client.get(f"{KEYS}/self")).json()
    assert own["bootstrap"] is True and own["id"] == boot["id"]
    assert_problem(await client.delete(f"{KEYS}/{boot['id']}"), 409)
    assert (await client.get(f"{KEYS}/self")).status_code == 200


# ---- refusals counted ------------------------------------------------------------------


async def test_refusals_are_counted_by_reason(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, keydb: Database
) -> None:
    made = await make_key(client, "admin")
    await client.delete(f"{KEYS}/{made['id']}")
    before = await failures(client)
    assert (await anonymous.get("/api/v1/triggers")).status_code == 401
    bad = {"Authorization": f"Bearer {domain.new_key()}"}
    assert (await anonymous.get("/api/v1/triggers", headers=bad)).status_code == 401
    revoked = {"Authorization": f"Bearer {made['key']}"}
    assert (await anonymous.get("/api/v1/triggers", headers=revoked)).status_code == 401
    after = await failures(client)
    for reason in ("missing", "invalid", "revoked"):
        assert after[reason] == before[reason] + 1, reason


# ---- the audit trail ---------------------------------------------------------------------


async def test_create_and_revoke_leave_audit_rows_naming_the_acting_key(
    client: httpx.AsyncClient, keydb: Database
) -> None:
    manager = await make_key(client, "keys:admin", name="manager")
    async with as_key(client, manager["key"]) as c:
        made = (await c.post(KEYS, json={"name": "n", "scopes": ["keys:admin"]})).json()
        assert (await c.delete(f"{KEYS}/{made['id']}")).status_code == 204
        assert (await c.delete(f"{KEYS}/{made['id']}")).status_code == 404  # no second row
    async with keydb.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT key_id, key_name, action, fields FROM audit_log WHERE target_id = %s "
            "ORDER BY at, id",
            (made["id"],),
        )
    assert [(r["key_id"], r["key_name"], r["action"]) for r in rows] == [
        (manager["id"], "manager", "key.create"),
        (manager["id"], "manager", "key.revoke"),
    ]
    assert made["key"] not in str(rows)
