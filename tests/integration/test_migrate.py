"""Migrations against the real server: create the database, record versions, no-op twice,
safe when two runners race."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncmy
import pytest

from eventtrigger.config import DatabaseSettings, Settings
from eventtrigger.store.migrate import discover, migrate


async def _drop(db: DatabaseSettings) -> None:
    conn = await asyncmy.connect(
        host=db.host, port=db.port, user=db.user, password=str(db.password), autocommit=True
    )
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE IF EXISTS `{db.database}`")
    await conn.ensure_closed()


async def _tables(db: DatabaseSettings) -> set[str]:
    conn = await asyncmy.connect(
        host=db.host, port=db.port, user=db.user, password=str(db.password), database=db.database
    )
    async with conn.cursor() as cur:
        await cur.execute("SHOW TABLES")
        names = {row[0] for row in await cur.fetchall()}
    await conn.ensure_closed()
    return names


@pytest.fixture
async def scratch(settings: Settings) -> DatabaseSettings:
    db = dataclasses.replace(settings.database, database=settings.database.database + "_mig")
    await _drop(db)
    yield db  # type: ignore[misc]
    await _drop(db)


async def test_migrate_creates_the_database_and_every_table(scratch: DatabaseSettings) -> None:
    applied = await migrate(scratch)
    assert applied == [m.version for m in discover()]
    assert {
        "triggers",
        "trigger_schedules",
        "event_logs",
        "event_logs_archive",
        "idempotency_keys",
        "schema_migrations",
    } <= await _tables(scratch)


async def test_second_migrate_is_a_no_op(scratch: DatabaseSettings) -> None:
    await migrate(scratch)
    assert await migrate(scratch) == []


async def test_concurrent_migrations_apply_each_version_once(scratch: DatabaseSettings) -> None:
    results = await asyncio.gather(*(migrate(scratch) for _ in range(3)))
    everything = sorted(v for result in results for v in result)
    assert everything == [m.version for m in discover()]
