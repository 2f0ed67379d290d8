"""Upgrade from the oldest supported schema (0001): a database as an install of that era
left it, rows and all, is migrated by the real `eventtrigger migrate`, and the platform
then reads and fires what it holds.

The rows are written with plain SQL, in the shapes the 0001-era code wrote them (its
queries and config normalisation are in the history of `eventtrigger/store/queries/`
and `eventtrigger/domain/triggers.py` up to the commit that added 0002): normalised
configs, one pending occurrence per active scheduled trigger with the completed ones
behind it, a cancelled one for a paused trigger, event rows whose `request` snapshot
carries the signing secret, archived events, an Idempotency-Key mapping. No current code
writes them (ids and secrets too are made here, as that era made them), so a change to
today's code cannot make the old rows look newer than they are.

The scratch database is `<test database>_upgrade`, dropped before and after.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncmy
import httpx
import orjson
import pytest

from eventtrigger.config import DatabaseSettings, Settings, load_settings
from eventtrigger.store.db import Database, read_time
from eventtrigger.store.migrate import MIGRATIONS_DIR, discover, migrate
from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import (
    Sink,
    e2e_environ,
    event_rows,
    log_lines,
    signature_for,
    wait_until,
)
from tests.process import EventtriggerProcess

OLDEST = 1  # the oldest schema version an upgrade is supported (and tested) from
TABLES_0001 = (
    "triggers",
    "trigger_schedules",
    "event_logs",
    "event_logs_archive",
    "idempotency_keys",
)
RETRY = {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"}  # 0001's defaults
ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {"type": "integer"}},
}
EVERY = timedelta(seconds=2)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# -- rows as the 0001-era code made them ---------------------------------------------


def old_id(at: datetime) -> str:
    """A ULID, as that era's `ids.new_id` made one: 48-bit ms time + 80 random bits."""
    value = (int(at.timestamp() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def old_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def old_iso(at: datetime) -> str:
    """That era's config times: UTC, `Z`, microseconds only when there are any."""
    spec = "microseconds" if at.microsecond else "seconds"
    return at.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def old_config(endpoint: str, **specific: Any) -> dict[str, Any]:
    """A normalised config of that era: every default filled in, in its key order."""
    return {
        "endpoint": endpoint,
        "method": "POST",
        "headers": {"X-Old-Install": "0001"},
        "timeout": "10s",
        "retry": dict(RETRY),
        **specific,
    }


@dataclasses.dataclass
class OldTrigger:
    id: str
    name: str
    type: str
    status: str
    config: dict[str, Any]
    secret: str
    created_at: datetime
    pending: tuple[int, datetime] | None = None  # (occurrence id, fire_at)


@dataclasses.dataclass
class OldInstall:
    """What the old install held, as written; the handles the checks need."""

    db: Database
    t0: datetime
    triggers: dict[str, OldTrigger] = dataclasses.field(default_factory=dict)
    events: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # hot table
    archived: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    idempotent: tuple[str, Any, str] = ("", None, "")  # a stored key: (key, body, event id)
    stale: str = ""  # a finished event past the active window, not yet moved (hot table)
    expired: str = ""  # an archived event past the total window, not yet deleted

    def view(self, event_id: str) -> str | None:
        """The events API's view of an old event (they all lie far from the windows'
        edges, so t0 stands for now): the default windows, 2 h active and 48 h kept."""
        e = self.events.get(event_id) or self.archived[event_id]
        age = self.t0 - e["fired_at"]
        return (
            "active"
            if age < timedelta(hours=2)
            else "archived"
            if age < timedelta(hours=48)
            else None
        )

    async def trigger(
        self, key: str, kind: str, config: dict[str, Any], *, status: str = "active"
    ) -> OldTrigger:
        created = self.t0 - timedelta(days=2, minutes=len(self.triggers))
        t = OldTrigger(old_id(created), f"old {key}", kind, status, config, old_secret(), created)
        async with self.db.connection() as tx:
            await tx.execute(
                "INSERT INTO triggers (id, name, type, status, config, signing_secret, version,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s)",
                (
                    t.id,
                    t.name,
                    kind,
                    status,
                    orjson.dumps(config).decode(),
                    t.secret,
                    created,
                    created,
                ),
            )
        self.triggers[key] = t
        return t

    async def occurrence(self, t: OldTrigger, fire_at: datetime, status: str) -> int:
        """An occurrence row; a completed one as the scheduler left it (claimed once)."""
        fired = status == "completed"
        async with self.db.connection() as tx:
            await tx.execute(
                "INSERT INTO trigger_schedules (trigger_id, fire_at, status, attempt_count,"
                " last_attempt_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    t.id,
                    fire_at,
                    status,
                    1 if fired else 0,
                    fire_at - timedelta(seconds=1) if fired else None,
                    fire_at - EVERY,
                    fire_at + timedelta(milliseconds=30) if fired else fire_at - EVERY,
                ),
            )
            row = await tx.fetch_one(
                "SELECT id FROM trigger_schedules WHERE trigger_id = %s AND fire_at = %s",
                (t.id, fire_at),
            )
        assert row is not None
        occurrence_id = int(row["id"])
        if status == "pending":
            t.pending = (occurrence_id, fire_at)
        return occurrence_id

    async def event(
        self,
        t: OldTrigger | None,
        *,
        scheduled_at: datetime,
        status: str = "success",
        source: str = "scheduled",
        occurrence_id: int | None = None,
        payload: Any = None,
        attempts: int = 1,
        code: int | None = 200,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        archived: bool = False,
        kind: str | None = None,
        endpoint: str | None = None,
    ) -> str:
        """An event row, finished or not, with that era's request snapshot."""
        fired = scheduled_at + timedelta(milliseconds=3)
        config = t.config if t is not None else old_config(endpoint or "")
        secret = t.secret if t is not None else old_secret()
        event: dict[str, Any] = {
            "id": old_id(fired),
            "trigger_id": None if t is None else t.id,
            "trigger_type": kind or (t.type if t else "interval_scheduled"),
            "occurrence_id": occurrence_id,
            "source": source,
            "is_test_run": t is None,
            "note": "test run" if t is None else None,
            "scheduled_at": scheduled_at,
            "fired_at": fired,
            "payload": payload,
            "request": {
                "url": config["endpoint"],
                "method": config["method"],
                "headers": config["headers"],
                "timeout": config["timeout"],
                "retry": config["retry"],
                "signing_secret": secret,
            },
            "status": status,
            "attempts": attempts,
            "last_status_code": code,
            "last_error": error,
            "delivered_at": fired + timedelta(milliseconds=20) if status == "success" else None,
            "next_attempt_at": next_attempt_at,
            "created_at": fired,
            "updated_at": fired + timedelta(milliseconds=20 + 1000 * attempts),
        }
        table = "event_logs_archive" if archived else "event_logs"
        names = ", ".join(event)
        values = [
            orjson.dumps(v).decode() if k in ("payload", "request") else v for k, v in event.items()
        ]
        async with self.db.connection() as tx:
            await tx.execute(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(event))})",
                values,
            )
        (self.archived if archived else self.events)[event["id"]] = event
        return str(event["id"])


async def write_old_install(db: Database, sink: Sink, t0: datetime) -> OldInstall:
    """The old install stopped at `last` (three seconds before t0); its rows as it left them."""
    old = OldInstall(db, t0)
    last = t0 - timedelta(seconds=3)

    hook = await old.trigger(
        "hook", "webhook", old_config(sink.url("/old/hook"), schema=ORDER_SCHEMA)
    )
    body = {"order_id": 1}
    hooked = await old.event(
        hook, scheduled_at=t0 - timedelta(minutes=20), source="api", payload=body
    )
    key = "Order-1"
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    async with db.connection() as tx:
        await tx.execute(
            "INSERT INTO idempotency_keys (scope, idem_key, event_id, request_hash, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (hook.id, key, hooked, digest, t0 - timedelta(minutes=20)),
        )
    old.idempotent = (key, body, hooked)
    await old.event(
        hook,
        scheduled_at=t0 - timedelta(minutes=15),
        source="api",
        payload={"order_id": 2},
        status="failure",
        attempts=5,
        code=500,
        error="HTTP 500",
    )
    # In the middle of its retries when the old install stopped: its backoff has run out.
    await old.event(
        hook,
        scheduled_at=t0 - timedelta(seconds=30),
        source="api",
        payload={"order_id": 3},
        status="retrying",
        code=503,
        error="HTTP 503",
        next_attempt_at=t0 - timedelta(seconds=1),
    )

    run_at = t0 + timedelta(seconds=6)
    once = await old.trigger(
        "once",
        "time_scheduled",
        old_config(sink.url("/old/once"), run_at=old_iso(run_at), payload={"once": True}),
    )
    await old.occurrence(once, run_at, "pending")

    cron = await old.trigger(
        "cron",
        "cron_scheduled",
        old_config(sink.url("/old/cron"), cron="* * * * * *", timezone="UTC", payload={"tick": 1}),
    )
    for back in (2, 1, 0):
        at = last - timedelta(seconds=back)
        occurrence = await old.occurrence(cron, at, "completed")
        await old.event(cron, scheduled_at=at, occurrence_id=occurrence, payload={"tick": 1})
    await old.occurrence(cron, last + timedelta(seconds=1), "pending")

    anchor = t0 - timedelta(days=1) + timedelta(milliseconds=250)
    every = await old.trigger(
        "every",
        "interval_scheduled",
        old_config(
            sink.url("/old/every"), every="2s", start_at=old_iso(anchor), payload={"every": 2}
        ),
    )
    k = (last - anchor) // EVERY
    for step in (k - 1, k):
        at = anchor + step * EVERY
        occurrence = await old.occurrence(every, at, "completed")
        await old.event(every, scheduled_at=at, occurrence_id=occurrence, payload={"every": 2})
    await old.occurrence(every, anchor + (k + 1) * EVERY, "pending")
    for hours in (5, 30):  # past the active window: moved to the archive by retention
        await old.event(
            every, scheduled_at=t0 - timedelta(hours=hours), payload={"every": 2}, archived=True
        )
    await old.event(
        hook,
        scheduled_at=t0 - timedelta(hours=7),
        source="api",
        payload={"order_id": 0},
        status="failure",
        attempts=5,
        code=502,
        error="HTTP 502",
        archived=True,
    )

    # Retention had not yet run over these when the old install stopped.
    old.stale = await old.event(every, scheduled_at=t0 - timedelta(hours=3), payload={"every": 2})
    old.expired = await old.event(
        every, scheduled_at=t0 - timedelta(hours=50), payload={"every": 2}, archived=True
    )

    done_at = t0 - timedelta(hours=1)
    done = await old.trigger(
        "done",
        "time_scheduled",
        old_config(sink.url("/old/done"), run_at=old_iso(done_at), payload=None),
        status="completed",
    )
    occurrence = await old.occurrence(done, done_at, "completed")
    await old.event(done, scheduled_at=done_at, occurrence_id=occurrence)

    paused = await old.trigger(
        "paused",
        "cron_scheduled",
        old_config(sink.url("/old/paused"), cron="* * * * * *", timezone="UTC", payload=None),
        status="paused",
    )
    await old.occurrence(paused, last + timedelta(seconds=1), "cancelled")

    await old.event(  # a test run (`POST /api/v1/test-runs`): no trigger behind it
        None,
        scheduled_at=t0 - timedelta(minutes=5),
        source="manual-test",
        payload={"try": True},
        endpoint=sink.url("/old/test-run"),
    )
    return old


# -- the database, before and after -----------------------------------------------------


def scratch_environ() -> dict[str, str]:
    """The e2e settings, on `<test database>_upgrade`."""
    env = e2e_environ()
    url = urlsplit(env["EVENTTRIGGER_DATABASE_URL"])
    env["EVENTTRIGGER_DATABASE_URL"] = urlunsplit(url._replace(path=f"{url.path}_upgrade"))
    return env


async def drop(db: DatabaseSettings) -> None:
    conn = await asyncmy.connect(
        host=db.host, port=db.port, user=db.user, password=str(db.password), autocommit=True
    )
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE IF EXISTS `{db.database}`")
    await conn.ensure_closed()


async def columns_0001(db: Database, name: str) -> dict[str, list[str]]:
    """Each 0001 table's columns, in order, as the database has them now."""
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (name,),
        )
    columns: dict[str, list[str]] = {t: [] for t in TABLES_0001}
    for row in rows:
        if row["t"] in columns:
            columns[row["t"]].append(row["c"])
    return columns


async def contents(db: Database, columns: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the 0001 tables, those columns only (each table's key leads)."""
    out = {}
    async with db.connection() as tx:
        for table, names in columns.items():
            out[table] = await tx.fetch_all(f"SELECT {', '.join(names)} FROM {table} ORDER BY 1, 2")
    return out


async def cli_migrate(env: dict[str, str]) -> list[str]:
    """`eventtrigger migrate` as an operator runs it; its output lines (it must exit 0)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventtrigger.cli", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout.splitlines()


@pytest.fixture
async def scratch(tmp_path: Path) -> AsyncIterator[tuple[dict[str, str], Settings, Database]]:
    """A database on schema 0001 only (the file copied alone into a directory of its own)."""
    env = scratch_environ()
    settings = load_settings(environ=env, env_file=None)
    await drop(settings.database)
    oldest = tmp_path / "schema-0001"
    oldest.mkdir()
    [first] = MIGRATIONS_DIR.glob(f"{OLDEST:04d}_*.sql")
    shutil.copy(first, oldest)
    assert await migrate(settings.database, oldest) == [OLDEST]
    db = Database(settings.database)
    await db.connect()
    try:
        yield env, settings, db
    finally:
        await db.close()
        await drop(settings.database)


# -- the test ----------------------------------------------------------------------------


def client(proc: EventtriggerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=proc.base_url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=10
    )


def api_time(at: datetime | None) -> str | None:
    """A time as the API writes it (UTC, `Z`, microseconds only when there are any)."""
    return None if at is None else old_iso(at)


async def test_a_0001_install_upgrades_keeps_its_data_and_its_triggers_fire(
    scratch: tuple[dict[str, str], Settings, Database], sink: Sink, tmp_path: Path
) -> None:
    env, settings, db = scratch
    t0 = datetime.now(UTC).replace(microsecond=0)
    old = await write_old_install(db, sink, t0)
    columns = await columns_0001(db, settings.database.database)
    before = await contents(db, columns)

    # 1. The upgrade, as an operator runs it: every later file once, then nothing.
    everything = [m.version for m in discover()]
    assert everything[0] == OLDEST
    assert (await cli_migrate(env))[-1] == f"migrations applied: {everything[1:]}"
    assert (await cli_migrate(env))[-1] == "migrations applied: none (up to date)"
    async with db.connection() as tx:
        recorded = await tx.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in recorded] == everything

    # 2. Every old row kept every value; the columns added since start as old rows need.
    await kept_through_migration(old, columns, before)

    # 3. Read through the API (API role only: nothing fires while we look).
    reader = EventtriggerProcess(env, "api", tmp_path / "api.log")
    try:
        reader.start()
        await read_through_api(old, reader)
    finally:
        reader.stop()

    # 4. The platform on the upgraded database.
    platform = EventtriggerProcess(env, "all", tmp_path / "all.log")
    try:
        platform.start()
        await fires_after_upgrade(old, platform, sink)
        await retention_after_upgrade(old, columns)
    finally:
        exit_code = platform.stop()
    assert exit_code == 0
    # No role tripped over an old row, even where no assertion above looks.
    for log in (reader.log_path, platform.log_path):
        errors = [line for line in log_lines(log) if line.get("level") in ("ERROR", "CRITICAL")]
        assert errors == [], errors


async def kept_through_migration(
    old: OldInstall,
    columns: dict[str, list[str]],
    before: dict[str, list[dict[str, Any]]],
) -> None:
    """Every 0001 column of every old row holds what it held; the columns added since
    hold what old rows need (0003 counted the archive, 0004 gave old webhooks their id as
    token, 0007 left fire_at nominal, the rest start empty)."""
    db = old.db
    assert await contents(db, columns) == before
    async with db.connection() as tx:
        triggers = await tx.fetch_all(
            "SELECT id, type, webhook_token, previous_signing_secret, previous_secret_expires_at,"
            " paused_reason, consecutive_failures FROM triggers"
        )
        occurrences = await tx.fetch_all("SELECT nominal_at FROM trigger_schedules")
        events = await tx.fetch_all(
            "SELECT lease_owner, replay_of, dlq_due_at, publish_due, parked, lag_mark"
            " FROM event_logs"
        )
        archived = await tx.fetch_all("SELECT replay_of FROM event_logs_archive")
        counts = await tx.fetch_all("SELECT minute, n FROM event_archive_counts")
        attempts = await tx.fetch_all("SELECT * FROM delivery_attempts")
    for r in triggers:  # 0004: an old webhook keeps its URL (token = id)
        assert r["webhook_token"] == (r["id"] if r["type"] == "webhook" else None), r
        assert (r["previous_signing_secret"], r["previous_secret_expires_at"]) == (None, None)
        assert (r["paused_reason"], r["consecutive_failures"]) == (None, 0), r
    assert {r["nominal_at"] for r in occurrences} == {None}  # 0007: fire_at is nominal
    assert len(events) == len(old.events)
    for e in events:
        assert e == {
            "lease_owner": None, "replay_of": None, "dlq_due_at": None,
            "publish_due": 0, "parked": 0, "lag_mark": None,
        }  # fmt: skip
    assert [r["replay_of"] for r in archived] == [None] * len(old.archived)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    minutes: dict[int, int] = {}
    for e in old.archived.values():  # 0003 counted what the archive held
        minute = (e["fired_at"] - epoch) // timedelta(minutes=1)
        minutes[minute] = minutes.get(minute, 0) + 1
    assert {r["minute"]: r["n"] for r in counts} == minutes
    assert attempts == []


async def read_through_api(old: OldInstall, reader: EventtriggerProcess) -> None:
    """The API answers for every old trigger and event as it was stored."""
    async with client(reader) as api:
        for t in old.triggers.values():
            got = await api.get(f"/api/v1/triggers/{t.id}")
            assert got.status_code == 200, got.text
            body = got.json()
            assert (body["name"], body["type"], body["status"]) == (t.name, t.type, t.status)
            assert body["config"] == t.config  # url, schedule, payload, all of it
            assert body["signing_secret"] == t.secret
            assert body["created_at"] == api_time(t.created_at)
            if t.type == "webhook":
                assert body["webhook_url"] == f"{reader.base_url}/api/v1/webhook/{t.id}"
            else:
                assert body["next_fire_at"] == api_time(t.pending[1] if t.pending else None)
        listed = await api.get("/api/v1/triggers", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        assert {i["id"] for i in listed.json()["items"]} == {t.id for t in old.triggers.values()}

        every_id = [*old.events, *old.archived]
        for view in ("active", "archived"):
            listed = await api.get("/api/v1/events", params={"limit": 500, "view": view})
            assert listed.status_code == 200, listed.text
            assert {i["id"] for i in listed.json()["items"]} == {
                i for i in every_id if old.view(i) == view
            }, view
        for event_id in every_id:
            e = old.events.get(event_id) or old.archived[event_id]
            got = await api.get(f"/api/v1/events/{event_id}")
            if old.view(event_id) is None:
                assert got.status_code == 404, got.text  # past the total window
                continue
            assert got.status_code == 200, got.text
            one = got.json()
            assert one["retention"] == old.view(event_id)
            assert (one["trigger_id"], one["source"], one["status"]) == (
                e["trigger_id"], e["source"], e["status"]
            )  # fmt: skip
            assert (one["attempts"], one["last_status_code"], one["payload"]) == (
                e["attempts"], e["last_status_code"], e["payload"]
            )  # fmt: skip
            assert one["scheduled_at"] == api_time(e["scheduled_at"])
            assert one["is_test_run"] is e["is_test_run"]
            history = await api.get(f"/api/v1/events/{event_id}/attempts")
            assert history.status_code == 200, history.text
            assert history.json() == {"items": []}  # none were kept before 0005


async def fires_after_upgrade(old: OldInstall, platform: EventtriggerProcess, sink: Sink) -> None:
    db, hook, once = old.db, old.triggers["hook"], old.triggers["once"]
    async with client(platform) as api:
        # The old webhook URL (the trigger id) still takes calls, signed with the old secret.
        async with httpx.AsyncClient() as anonymous:
            called = await anonymous.post(
                f"{platform.base_url}/api/v1/webhook/{hook.id}", json={"order_id": 4}
            )
            assert called.status_code == 202, called.text
            fresh = called.json()["event_id"]
            key, body, first_call = old.idempotent
            again = await anonymous.post(
                f"{platform.base_url}/api/v1/webhook/{hook.id}",
                json=body,
                headers={"Idempotency-Key": key},
            )
            # 0010 made keys exact: the same key in other letter case is another call.
            other = await anonymous.post(
                f"{platform.base_url}/api/v1/webhook/{hook.id}",
                json=body,
                headers={"Idempotency-Key": key.lower()},
            )
        assert again.status_code == 200, again.text  # the old mapping answers the repeat
        assert again.json() == {"event_id": first_call}
        assert other.status_code == 202, other.text
        assert other.json()["event_id"] not in old.events

        # The event left mid-retry is owed its next attempt, and gets it.
        [retrying] = [i for i, e in old.events.items() if e["status"] == "retrying"]
        for event_id, attempts in ((fresh, 1), (other.json()["event_id"], 1), (retrying, 2)):
            delivery = await delivered(sink, "/old/hook", event_id)
            assert delivery.headers["webhook-signature"] == signature_for(hook.secret, delivery)
            assert delivery.headers["X-Old-Install"] == "0001"
            row = await finished(db, event_id)
            assert (row["status"], row["attempts"]) == ("success", attempts), row

        # The recurring ones go on from their pending occurrence, on their schedules.
        cron_rows = await new_events(old, "cron", 3)
        every_rows = await new_events(old, "every", 3)
        for t, rows, step in (
            (old.triggers["cron"], cron_rows, timedelta(seconds=1)),
            (old.triggers["every"], every_rows, EVERY),
        ):
            assert t.pending is not None
            times = [when(r["scheduled_at"]) for r in rows]
            # The old pending occurrence fires first (late by the upgrade's downtime)...
            assert (rows[0]["occurrence_id"], times[0]) == t.pending, rows[0]
            # ...then every occurrence from now on, none skipped, none twice, on the grid.
            assert times[1:] == [times[1] + n * step for n in range(len(times) - 1)], times
            anchor = t.pending[1]
            assert all((s - anchor) % step == timedelta(0) for s in times), times
            assert len({r["occurrence_id"] for r in rows}) == len(rows)
            first = await delivered(sink, path_of(sink, t), rows[0]["id"])
            for r in rows[1:]:
                await delivered(sink, path_of(sink, t), r["id"])
            assert first.headers["webhook-signature"] == signature_for(t.secret, first)
            assert first.json() == t.config["payload"]

        # The one-shot fires once, at its time, and is then done.
        assert once.pending is not None
        [row] = await new_events(old, "once", 1)
        assert (row["occurrence_id"], when(row["scheduled_at"])) == once.pending, row
        assert when(row["fired_at"]) >= once.pending[1]
        [delivery] = await sink.wait_for("/old/once", 1)
        assert delivery.headers["webhook-id"] == row["id"]
        assert delivery.json() == {"once": True}
        got = (await api.get(f"/api/v1/triggers/{once.id}")).json()
        assert (got["status"], got["next_fire_at"]) == ("completed", None)

        # The events API lists the old events and the new ones side by side.
        listed = await api.get("/api/v1/events", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        ids = {i["id"] for i in listed.json()["items"]}
        new = {fresh, row["id"], *(r["id"] for r in cron_rows + every_rows)}
        assert {i for i in old.events if old.view(i) == "active"} | new <= ids

    # Nothing the old install had finished is sent again; the finished triggers stay quiet.
    settled = {i for i, e in old.events.items() if e["status"] != "retrying"}
    assert not settled & {d.headers.get("webhook-id") for d in sink.received}
    assert len(sink.at("/old/once")) == 1
    for key in ("done", "paused"):
        t = old.triggers[key]
        assert not sink.at(path_of(sink, t))
        rows = await event_rows(db, "trigger_id = %s", (t.id,))
        assert [r["id"] for r in rows] == [
            i for i, e in old.events.items() if e["trigger_id"] == t.id
        ]


async def retention_after_upgrade(old: OldInstall, columns: dict[str, list[str]]) -> None:
    """The retention role's first pass moves the old event left past the active window
    (values intact) and deletes the one past the total window; the per-minute archive
    counts that 0003 started stay exact."""
    db = old.db

    async def passed() -> bool:
        async with db.connection() as tx:
            hot = await tx.fetch_one("SELECT id FROM event_logs WHERE id = %s", (old.stale,))
            gone = await tx.fetch_one(
                "SELECT id FROM event_logs_archive WHERE id = %s", (old.expired,)
            )
        return hot is None and gone is None

    await wait_until(passed)
    names = ", ".join(columns["event_logs"])
    async with db.connection() as tx:
        moved = await tx.fetch_one(
            f"SELECT {names} FROM event_logs_archive WHERE id = %s", (old.stale,)
        )
        counted = await tx.fetch_all("SELECT minute, n FROM event_archive_counts WHERE n <> 0")
        actual = await tx.fetch_all(
            "SELECT TIMESTAMPDIFF(MINUTE, '1970-01-01', fired_at) AS minute, COUNT(*) AS n"
            " FROM event_logs_archive GROUP BY minute"
        )
    assert moved is not None
    e = old.events[old.stale]
    assert (moved["status"], moved["attempts"], when(moved["fired_at"])) == (
        e["status"], e["attempts"], e["fired_at"]
    )  # fmt: skip
    assert orjson.loads(moved["request"]) == e["request"]
    assert {r["minute"]: r["n"] for r in counted} == {r["minute"]: r["n"] for r in actual}


def when(value: datetime | None) -> datetime:
    """A non-null time column, in UTC."""
    at = read_time(value)
    assert at is not None
    return at


def path_of(sink: Sink, t: OldTrigger) -> str:
    return str(t.config["endpoint"]).removeprefix(sink.url(""))


async def delivered(sink: Sink, path: str, event_id: str) -> Any:
    """The one delivery of event `event_id` at `path`, once it has arrived."""

    async def arrived() -> list[Any]:
        return [d for d in sink.at(path) if d.headers.get("webhook-id") == event_id]

    [delivery] = await wait_until(arrived)
    return delivery


async def finished(db: Database, event_id: str) -> dict[str, Any]:
    """Event `event_id`'s row once it succeeded or failed for good."""

    async def final() -> dict[str, Any] | None:
        rows = await event_rows(db, "id = %s", (event_id,))
        return rows[0] if rows and rows[0]["status"] in ("success", "failure") else None

    row: dict[str, Any] = await wait_until(final)
    return row


async def new_events(old: OldInstall, key: str, count: int) -> list[dict[str, Any]]:
    """The events the upgraded platform fired for trigger `key` (oldest first), once at
    least `count` of them succeeded."""
    t = old.triggers[key]

    async def enough() -> list[dict[str, Any]] | None:
        rows = await event_rows(old.db, "trigger_id = %s", (t.id,))
        fresh = [r for r in rows if r["id"] not in old.events]
        return fresh if sum(r["status"] == "success" for r in fresh) >= count else None

    rows: list[dict[str, Any]] = await wait_until(enough, timeout=30)
    return rows
