"""EVENTTRIGGER_SECRET_KEY end to end: the real program, real MariaDB and Kafka. With the
key set, the triggers table and the event snapshots hold no `whsec_` value while the
receiver (the `standardwebhooks` reference library, with the plaintext secret) verifies
every delivery; `eventtrigger rotate-secret-key` moves everything to a new first key; a
process whose keys cannot read what is stored refuses to start, in one line."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from eventtrigger.domain.secretbox import PREFIX, key_id_of
from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    e2e_environ,
    event_rows,
    fire_webhook,
    start_test_run,
    wait_for_event,
)
from tests.process import EventtriggerProcess

K1 = base64.b64encode(os.urandom(32)).decode()
K2 = base64.b64encode(os.urandom(32)).decode()


async def _program(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m eventtrigger.cli ARGV` with `env` over this environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventtrigger.cli", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.fixture
async def emptied(db: Database) -> AsyncIterator[Database]:
    """The test database, emptied again after the test: no encrypted row may be left for
    later tests, whose processes start without a key."""
    yield db
    async with db.connection() as tx:
        for table in ("event_logs", "event_logs_archive", "trigger_schedules", "triggers"):
            await tx.execute(f"DELETE FROM {table}")


async def _raw_triggers(db: Database) -> list[str]:
    async with db.connection() as tx:
        rows = await tx.fetch_all("SELECT signing_secret, previous_signing_secret FROM triggers")
    return [v for r in rows for v in r.values() if v is not None]


async def test_encrypted_secrets_are_unreadable_in_the_tables_and_deliveries_verify(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    emptied: Database,
) -> None:
    db = emptied
    env = e2e_environ(EVENTTRIGGER_SECRET_KEY=f"k1:{K1}")
    proc = launch(env=env)
    async with api(proc) as client:
        hook = await create_trigger(
            client, "webhook", {"endpoint": sink.url("/hook"), "schema": {"type": "object"}}
        )
        rotated = await client.post(
            f"/api/v1/triggers/{hook['id']}/rotate-secret", json={"grace": "1h"}
        )
        assert rotated.status_code == 200, rotated.text
        run = await start_test_run(
            client, "webhook", {"endpoint": sink.url("/run"), "schema": {}}, {"n": 2}
        )
    old, new = hook["signing_secret"], rotated.json()["signing_secret"]
    fired = await fire_webhook(hook["webhook_url"], {"n": 1})
    [delivered] = await sink.wait_for("/hook", 1)
    [tried] = await sink.wait_for("/run", 1)
    for event_id in (fired, run["event_id"]):
        assert (await wait_for_event(db, event_id))["status"] == "success"

    # The receiver verifies with the plaintext secrets (both, during the grace).
    for secret in (new, old):
        Webhook(secret).verify(delivered.body, delivered.headers, json_parse=False)
    Webhook(run["signing_secret"]).verify(tried.body, tried.headers, json_parse=False)
    # ... which the tables do not hold.
    stored = await _raw_triggers(db)
    assert len(stored) == 2
    for value in stored:
        assert value.startswith(f"{PREFIX}k1:") and "whsec_" not in value
    for row in await event_rows(db):
        assert "whsec_" not in str(row["request"])

    # A new first key: rotate-secret-key moves every row to it, the old key can then go.
    both = {**env, "EVENTTRIGGER_SECRET_KEY": f"k2:{K2},k1:{K1}"}
    done = await _program("rotate-secret-key", "--batch=1", env=both)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "1 trigger(s), 2 event(s)" in done.stdout
    assert all(key_id_of(v) == "k2" for v in await _raw_triggers(db))
    proc.stop()
    only = launch(env={**env, "EVENTTRIGGER_SECRET_KEY": f"k2:{K2}"})
    async with api(only) as client:
        got = await client.get(f"/api/v1/triggers/{hook['id']}")
    assert got.status_code == 200
    # The same webhook path on the new process (its own port).
    again = await fire_webhook(only.base_url + urlsplit(hook["webhook_url"]).path, {"n": 3})
    second = (await sink.wait_for("/hook", 2))[1]
    assert second.headers["webhook-id"] == again
    Webhook(new).verify(second.body, second.headers, json_parse=False)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "no key is set"),
        (f"k2:{K2}", "not among the keys given"),
        (f"k1:{K2}", "does not decrypt"),
    ],
)
async def test_a_process_that_cannot_read_the_stored_secrets_refuses_to_start(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    emptied: Database,
    key: str,
    problem: str,
) -> None:
    env = e2e_environ(EVENTTRIGGER_SECRET_KEY=f"k1:{K1}")
    proc = launch(roles="api", env=env)
    async with api(proc) as client:
        await create_trigger(
            client, "webhook", {"endpoint": "http://127.0.0.1:9/x", "schema": {"type": "object"}}
        )
    proc.stop()
    done = await _program("run", "--roles=worker", env={**env, "EVENTTRIGGER_SECRET_KEY": key})
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("eventtrigger: configuration error: EVENTTRIGGER_SECRET_KEY: ")
    assert problem in lines[0]
    assert K1 not in done.stderr and K2 not in done.stderr
