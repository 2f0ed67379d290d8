"""The API under awkward clients: a client that hangs up mid-body leaves no exception in
the server log, and an empty body is an absent one whatever its Content-Type."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest

from tests.api._support import create, trigger_body
from tests.conftest import TEST_API_KEY
from tests.process import EventtriggerProcess


async def _wait_for_log(server: EventtriggerProcess, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log_path.read_text()
        if needle in text:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared in the server log")


@pytest.mark.parametrize("path", ["/api/v1/triggers", "/api/v1/test-runs"])
async def test_a_client_that_hangs_up_mid_body_leaves_no_exception_in_the_log(
    server: EventtriggerProcess, path: str
) -> None:
    request_id = f"hangup-{secrets.token_hex(6)}"
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {TEST_API_KEY}\r\n"
        f"X-Request-Id: {request_id}\r\nContent-Type: application/json\r\n"
        'Content-Length: 1000\r\n\r\n{"name": '.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # The access-log line is written when the request is done with, error or not.
    log = await _wait_for_log(server, f'"request_id":"{request_id}"')
    lines = [line for line in log.splitlines() if request_id in line]
    assert not any('"level":"ERROR"' in line for line in lines), lines
    assert "Exception in ASGI application" not in log


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "application/json"])
async def test_test_run_of_a_saved_trigger_with_an_empty_body_is_202(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    trigger = await create(client, trigger_body("interval_scheduled"))
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(
        f"/api/v1/triggers/{trigger['id']}/test", content=b"", headers=headers
    )
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"event_id"}
