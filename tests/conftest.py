"""Shared test settings: every test that needs services uses its own database,
`<configured database>_test`, so a developer's data is never touched."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from eventtrigger.config import Settings, load_settings
from eventtrigger.store.db import Database
from eventtrigger.store.migrate import migrate

TEST_API_KEY = "test-key-0123456789"
TABLES = (
    "audit_log",
    "api_keys",
    "delivery_attempts",
    "event_logs",
    "event_logs_archive",
    "event_archive_counts",
    "idempotency_keys",
    "trigger_schedules",
    "triggers",
)


def test_environ(**overrides: str) -> dict[str, str]:
    url = urlsplit(
        os.environ.get("EVENTTRIGGER_DATABASE_URL", "mysql://root@127.0.0.1:3306/eventtrigger")
    )
    # A separate database; EVENTTRIGGER_TEST_DATABASE lets two test runs share a server.
    database = os.environ.get("EVENTTRIGGER_TEST_DATABASE", url.path.lstrip("/") + "_test")
    env = {
        "EVENTTRIGGER_DATABASE_URL": urlunsplit(url._replace(path=f"/{database}")),
        "EVENTTRIGGER_KAFKA_BOOTSTRAP": os.environ.get(
            "EVENTTRIGGER_KAFKA_BOOTSTRAP", "127.0.0.1:9092"
        ),
        "EVENTTRIGGER_API_KEYS": TEST_API_KEY,
        "EVENTTRIGGER_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(environ=test_environ(), env_file=None)


@pytest.fixture(scope="session")
async def migrated(settings: Settings) -> Settings:
    """The test database, created and migrated once per session (needs `make services`)."""
    await migrate(settings.database)
    return settings


@pytest.fixture
async def db(migrated: Settings) -> AsyncIterator[Database]:
    """A connected pool on an emptied test database."""
    database = Database(migrated.database)
    await database.connect()
    async with database.connection() as tx:
        for table in TABLES:
            await tx.execute(f"DELETE FROM {table}")
    yield database
    await database.close()
