"""API tests: the real `eventtrigger run --roles=api` process over HTTP, real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from eventtrigger.config import Settings
from eventtrigger.store.db import Database
from tests.conftest import TEST_API_KEY, test_environ
from tests.process import EventtriggerProcess


@pytest.fixture(scope="session")
def server(
    migrated: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventtriggerProcess]:
    log = tmp_path_factory.mktemp("api") / "eventtrigger.log"
    proc = EventtriggerProcess(test_environ(), "api", log)
    proc.start()
    yield proc
    assert proc.stop() == 0, log.read_text()


@pytest.fixture
async def client(server: EventtriggerProcess, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client on a clean database."""
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}, timeout=10
    ) as c:
        yield c


@pytest.fixture
async def anonymous(server: EventtriggerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
        yield c
