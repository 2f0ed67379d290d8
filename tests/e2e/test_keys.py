"""Managed API keys across real processes: a key revoked through one api process is
refused by another within a second; bootstrap keys turned off by configuration; a burst
of refusals from one address answered slowly; the `keys` CLI commands."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from eventtrigger.domain import keys as domain
from eventtrigger.ids import new_id
from eventtrigger.store import keys as store
from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import e2e_environ
from tests.e2e.test_cli import cli, ok
from tests.process import EventtriggerProcess

KEYS = "/api/v1/keys"
Launch = Callable[..., EventtriggerProcess]
Api = Callable[[EventtriggerProcess], httpx.AsyncClient]


def _with_key(proc: EventtriggerProcess, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=proc.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


async def _clean(db: Database) -> None:
    async with db.connection() as tx:
        await tx.execute("DELETE FROM api_keys")


async def _insert_key(db: Database, *scopes: str) -> str:
    """A managed key written straight to the database (as another process would)."""
    now = datetime.now(UTC)
    key = domain.new_key()
    stored = domain.StoredKey(
        id=new_id(now),
        name="made elsewhere",
        scopes=frozenset(scopes),
        prefix=domain.prefix_of(key),
        created_at=now,
        expires_at=None,
        last_used_at=None,
        revoked_at=None,
    )
    await db.run(lambda tx: store.insert(tx, stored, domain.key_hash(key)))
    return key


async def test_a_key_revoked_in_one_process_is_refused_by_another_within_1_second(
    launch: Launch, api: Api, db: Database
) -> None:
    await _clean(db)
    env = e2e_environ()
    first = launch("api", env)
    second = launch("api", env)
    async with api(first) as admin:
        made = (await admin.post(KEYS, json={"name": "ci", "scopes": ["triggers:read"]})).json()
        async with _with_key(second, made["key"]) as other:
            # The second process has the key cached as good when the revocation lands.
            assert (await other.get("/api/v1/triggers")).status_code == 200
            assert (await admin.delete(f"{KEYS}/{made['id']}")).status_code == 204
            revoked_at = time.monotonic()
            while (answer := await other.get("/api/v1/triggers")).status_code == 200:
                assert time.monotonic() - revoked_at < 1.0, "still accepted after 1 s"
                await asyncio.sleep(0.02)
            assert answer.status_code == 401 and "revoked" in answer.json()["detail"]
            # And for good.
            assert (await other.get("/api/v1/triggers")).status_code == 401


async def test_bootstrap_keys_disabled_are_refused_and_unlisted(
    launch: Launch, db: Database
) -> None:
    await _clean(db)
    managed = await _insert_key(db, "keys:admin")
    proc = launch("api", EVENTTRIGGER_BOOTSTRAP_KEYS="disabled")
    async with _with_key(proc, TEST_API_KEY) as boot:
        refused = await boot.get("/api/v1/triggers")
    assert refused.status_code == 401
    assert "EVENTTRIGGER_BOOTSTRAP_KEYS=disabled" in refused.json()["detail"]
    async with _with_key(proc, managed) as c:
        listed = await c.get(KEYS)
    assert listed.status_code == 200
    assert [k["bootstrap"] for k in listed.json()["items"]] == [False]
    assert "No usable managed key" not in refused.json()["detail"]


async def test_bootstrap_keys_disabled_without_a_key_admin_say_how_to_get_back_in(
    launch: Launch, db: Database
) -> None:
    await _clean(db)
    await _insert_key(db, "triggers:write")  # usable, but it cannot make keys
    proc = launch("api", EVENTTRIGGER_BOOTSTRAP_KEYS="disabled")
    async with _with_key(proc, TEST_API_KEY) as boot:
        refused = await boot.get("/api/v1/triggers")
    assert refused.status_code == 401
    detail = refused.json()["detail"]
    assert "No usable managed key" in detail and "EVENTTRIGGER_BOOTSTRAP_KEYS=enabled" in detail


async def test_an_api_with_bootstrap_keys_disabled_starts_without_any_key(
    launch: Launch, db: Database
) -> None:
    await _clean(db)
    managed = await _insert_key(db, "admin")
    proc = launch(
        "api", e2e_environ(EVENTTRIGGER_API_KEYS="", EVENTTRIGGER_BOOTSTRAP_KEYS="disabled")
    )
    async with _with_key(proc, managed) as c:
        assert (await c.get(f"{KEYS}/self")).json()["scopes"] == ["admin"]


async def test_a_burst_of_refusals_from_one_address_is_answered_slowly(
    launch: Launch, db: Database
) -> None:
    proc = launch("api", EVENTTRIGGER_AUTH_FAILURE_BURST="3")
    async with _with_key(proc, "etk_not-a-key-of-ours") as guesser:
        for _ in range(3):
            assert (await guesser.get("/api/v1/triggers")).status_code == 401
        started = time.monotonic()
        slowed = await guesser.get("/api/v1/triggers")
        took = time.monotonic() - started
    assert slowed.status_code == 401
    assert took >= 0.9, f"the 4th refusal in a burst took only {took:.3f} s"
    # A good key from elsewhere is unaffected in what it gets.
    async with _with_key(proc, TEST_API_KEY) as good:
        assert (await good.get("/api/v1/triggers")).status_code == 200


async def test_refusals_sent_in_parallel_are_answered_no_faster_than_one_by_one(
    launch: Launch, db: Database
) -> None:
    proc = launch("api", EVENTTRIGGER_AUTH_FAILURE_BURST="1")
    async with _with_key(proc, "etk_not-a-key-of-ours") as guesser:
        assert (await guesser.get("/api/v1/triggers")).status_code == 401  # the burst
        started = time.monotonic()
        answers = await asyncio.gather(*(guesser.get("/api/v1/triggers") for _ in range(3)))
        took = time.monotonic() - started
    assert [a.status_code for a in answers] == [401, 401, 401]
    # In line, a second each: three guesses in parallel take as long as three in a row.
    assert took >= 2.9, f"three parallel refusals over the burst took only {took:.3f} s"


async def test_keys_create_list_revoke_through_the_cli(
    launch: Launch, api: Api, db: Database
) -> None:
    await _clean(db)
    proc = launch("api")
    url = proc.base_url
    made = json.loads(
        ok(await cli(url, "keys", "create", "--name", "cli", "--scope", "events:read",
                     "--scope", "triggers:read", "--json"))
    )  # fmt: skip
    assert made["scopes"] == ["events:read", "triggers:read"]
    plain = await cli(url, "keys", "create", "--name", "bare", "--scope", "events:read")
    bare_key = ok(plain).strip()
    assert bare_key.startswith("etk_") and "shown only now" in plain.stderr
    async with _with_key(proc, made["key"]) as c:
        assert (await c.get("/api/v1/events")).status_code == 200
    table = ok(await cli(url, "keys", "list"))
    assert made["id"] in table and "(bootstrap)" in table and made["key"] not in table
    listed = json.loads(ok(await cli(url, "keys", "list", "--json")))
    async with api(proc) as admin:
        assert listed == (await admin.get(KEYS)).json()
    assert (
        ok(await cli(url, "keys", "revoke", made["id"], "--yes")).strip()
        == f"revoked key {made['id']}"
    )
    async with _with_key(proc, made["key"]) as c:
        assert (await c.get("/api/v1/events")).status_code == 401
    bad = await cli(url, "keys", "create", "--name", "x", "--scope", "root")
    assert bad.returncode == 1 and "scopes[0]" in bad.stderr
    refused = await cli(url, "keys", "list", key=bare_key)
    assert refused.returncode == 1 and "keys:admin" in refused.stderr
