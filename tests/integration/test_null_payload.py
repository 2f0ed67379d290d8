"""A `null` payload is a body: POST, PUT and PATCH send `null` as JSON, signed as such, to a
real HTTP endpoint on 127.0.0.1; GET and DELETE send no body. Jobs go through the whole
contract on their way (built, serialised as on Kafka, decoded), and receivers are checked
with the `standardwebhooks` reference library."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from eventtrigger.delivery import Deliverer
from eventtrigger.domain.jobs import decode_job, job_message, snapshot_secrets, with_secrets
from eventtrigger.ids import new_id, new_signing_secret

SECRET = new_signing_secret()


@dataclass
class Received:
    method: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str
    received: list[Received]


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    received: list[Received] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(Received(request.method, dict(request.headers), body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Endpoint(f"http://127.0.0.1:{port}/hook", received)
    finally:
        await runner.cleanup()


@pytest.fixture
async def deliverer() -> AsyncIterator[Deliverer]:
    deliverer = Deliverer((ipaddress.ip_network("127.0.0.0/8"),))
    await deliverer.start()
    try:
        yield deliverer
    finally:
        await deliverer.stop()


def _job(url: str, method: str, payload: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = {
        "url": url, "method": method, "headers": {}, "timeout": "5s",
        "retry": {"max_attempts": 1, "initial_delay": "1s", "max_delay": "1s"},
        "signing_secret": SECRET,
    }  # fmt: skip
    built = job_message({
        "id": new_id(now), "trigger_id": new_id(now), "trigger_type": "webhook",
        "source": "api", "is_test_run": False, "scheduled_at": now, "fired_at": now,
        "payload": payload, "attempts": 0, "request": request,
    })  # fmt: skip
    # As the worker reads it from Kafka, with its row's secrets to sign with.
    return with_secrets(decode_job(orjson.dumps(built)), snapshot_secrets(request))


async def _deliver(deliverer: Deliverer, endpoint: Endpoint, job: dict[str, Any]) -> Received:
    result = await deliverer.send(job, datetime.now(UTC))
    assert (result.status_code, result.error) == (204, None)
    [received] = endpoint.received
    assert received.method == job["request"]["method"]
    return received


def _verified(received: Received, json: bool = True) -> Any:
    """The payload as a Standard Webhooks receiver reads it (raises if the signature fails,
    or, with `json`, if the body is no JSON)."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    return Webhook(SECRET).verify(received.body, headers, json_parse=json)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_a_null_payload_is_sent_as_json_null_and_signed(
    endpoint: Endpoint, deliverer: Deliverer, method: str
) -> None:
    received = await _deliver(deliverer, endpoint, _job(endpoint.url, method, None))
    assert received.body == b"null"
    assert received.headers["Content-Type"] == "application/json"
    assert _verified(received) is None


async def test_an_old_message_with_a_null_body_is_sent_as_null_too(
    endpoint: Endpoint, deliverer: Deliverer
) -> None:
    # Published before null bodies were sent: the same message, read the new way.
    job = _job(endpoint.url, "POST", None)
    assert job["request"]["body"] is None
    received = await _deliver(deliverer, endpoint, job)
    assert (received.body, received.headers["Content-Type"]) == (b"null", "application/json")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_send_no_body_whatever_the_payload(
    endpoint: Endpoint, deliverer: Deliverer, method: str
) -> None:
    received = await _deliver(deliverer, endpoint, _job(endpoint.url, method, {"a": 1}))
    assert received.body == b""
    assert "Content-Type" not in received.headers
    _verified(received, json=False)  # signed over the empty body


async def test_a_payload_is_still_sent_as_json(endpoint: Endpoint, deliverer: Deliverer) -> None:
    received = await _deliver(deliverer, endpoint, _job(endpoint.url, "POST", {"n": [1, None]}))
    assert received.body == b'{"n":[1,null]}'
    assert received.headers["Content-Type"] == "application/json"
    assert _verified(received) == {"n": [1, None]}
