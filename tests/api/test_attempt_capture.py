"""What each attempt sent and got back, as the API answers it: the attempt's `request`
(method, URL, headers bounded and masked, body hash) and `response_headers`, null for
rows stored before they were kept; the event detail's `request` with the exact body text
the worker sends. The headers' bounds and masks are pure (delivery.py) and tested here
too, and so is the deliverer's capture against an endpoint on 127.0.0.1 (which request
it records, answered or not); the real worker's is in tests/e2e/test_attempt_capture.py."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from eventtrigger import delivery
from eventtrigger.delivery import (
    HEADER_BYTES_KEPT,
    HEADER_VALUE_KEPT,
    HEADERS_KEPT,
    MASK,
    Deliverer,
    recorded_headers,
    sensitive,
    sent_request,
    shown_url,
)
from eventtrigger.domain.jobs import NewEvent, request_body
from eventtrigger.ids import new_id, new_signing_secret
from eventtrigger.store import deliveries
from eventtrigger.store.db import Database
from eventtrigger.store.deliveries import Attempt
from eventtrigger.store.events import insert_events

EVENTS = "/api/v1/events"
# Unicode, floats, nesting and a key order that is not sorted: what "exact" has to survive.
PAYLOAD = {"z": 1.5, "a": ["é", "日本", None, 1e-7, 12345678901234567], "m": {"y": True, "b": {}}}


async def add_event(
    db: Database, *, method: str = "POST", payload: Any = PAYLOAD, url: str | None = None
) -> str:
    now = datetime.now(UTC)
    event = NewEvent(
        id=new_id(now),
        trigger_id=new_id(now),
        trigger_type="webhook",
        source="api",
        scheduled_at=now,
        fired_at=now,
        payload=payload,
        request={
            "url": url or "https://example.com/hook?x=1",
            "method": method,
            "headers": {"Authorization": "Bearer secret-value"},
            "timeout": "10s",
            "retry": {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"},
            "signing_secret": "whsec_c2VjcmV0",
        },
        next_attempt_at=now + timedelta(seconds=30),
    )
    async with db.transaction() as tx:
        await insert_events(tx, [event], now)
    return event.id


def _attempt(event_id: str, number: int, **fields: Any) -> Attempt:
    now = datetime.now(UTC)
    given: dict[str, Any] = {
        "status": "retrying",
        "status_code": 503,
        "error": "HTTP 503: busy",
        "delivered_at": None,
        "next_attempt_at": now + timedelta(seconds=2),
        "started_at": now,
        "duration_ms": 12,
        "response_body": "busy",
    }
    return Attempt(event_id=event_id, attempt=number, **{**given, **fields})


# ---- the bounds and masks (pure) --------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "Client-Secret",
        "X-PASSWORD-Hint",
        "apikey",
        # Credentials under names that say so less plainly.
        "X-Auth",
        "Api-Auth",
        "Authentication",
        "X-Credentials",
        "X-Session",
        "X-Access",
        "X-Hub-Signature",
        "X-Hub-Signature-256",
        "X-Client-Pass",
        "PASSWD",
        "X-Private-Key",
        "X-JWT",
        "X-Bearer",
        "oauth_token",
        "Www-Authenticate",
    ],
)
def test_sensitive_header_values_are_masked(name: str) -> None:
    assert recorded_headers([(name, "value"), ("X-Plain", "shown")]) == {
        name: MASK,
        "X-Plain": "shown",
    }


@pytest.mark.parametrize(
    "name",
    [
        "webhook-signature",  # ours: the console shows it to debug a receiver's check
        "Webhook-Signature",
        "webhook-id",
        "webhook-timestamp",
        "Content-Type",
        "Content-Length",
        "User-Agent",
        "Host",
        "Retry-After",
        "X-Tenant",
        "Access-Control-Allow-Credentials",  # CORS, not a credential
        "Keep-Alive",
    ],
)
def test_headers_that_do_not_look_secret_are_shown(name: str) -> None:
    assert not sensitive(name)
    assert recorded_headers([(name, "value")]) == {name: "value"}


def test_headers_are_bounded_keeping_the_webhook_headers_first() -> None:
    many = [(f"X-H{i}", "v") for i in range(50)]
    given = [*many, ("webhook-id", "E"), ("webhook-timestamp", "1"), ("webhook-signature", "v1,s")]
    kept = recorded_headers(given)
    assert len(kept) == HEADERS_KEPT
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(kept)
    assert list(kept)[-3:] == ["webhook-id", "webhook-timestamp", "webhook-signature"]  # order


def test_header_values_are_cut_and_the_total_is_bounded() -> None:
    kept = recorded_headers([("X-Long", "x" * 5000)])
    assert kept == {"X-Long": "x" * HEADER_VALUE_KEPT}
    huge = recorded_headers([(f"X-{i}", "y" * 2000) for i in range(32)])
    assert sum(len(k) + len(v) for k, v in huge.items()) <= HEADER_BYTES_KEPT
    assert len(orjson.dumps(huge)) < 20_000


def test_repeated_headers_are_joined_and_a_masked_one_stays_masked() -> None:
    kept = recorded_headers(
        [("Vary", "a"), ("vary", "b"), ("Set-Cookie", "s=1"), ("set-cookie", "t=2")]
    )
    assert kept == {"Vary": "a, b", "Set-Cookie": MASK}


def test_a_password_in_the_url_is_masked() -> None:
    assert shown_url("https://user:pw@example.com:8443/x") == "https://user:***@example.com:8443/x"
    assert shown_url("https://token@example.com/x") == "https://***@example.com/x"
    assert shown_url("https://example.com/x") == "https://example.com/x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.slack.com/services/T0/B0/SECRET?token=abc",
            "https://hooks.slack.com/services/T0/B0/SECRET?token=***",
        ),
        (
            "https://user:pw@example.com:8443/x?q=1&sig=a%3Db&empty=&flag#access_token=t",
            "https://user:***@example.com:8443/x?q=***&sig=***&empty=&***#***",
        ),
        ("http://[::1]:8080/x?k=v", "http://[::1]:8080/x?k=***"),
        ("https://example.com/x?", "https://example.com/x?"),
    ],
)
def test_every_query_value_and_the_fragment_are_masked(url: str, shown: str) -> None:
    assert shown_url(url) == shown
    assert shown_url(shown) == shown  # masking again changes nothing


# ---- over the API -----------------------------------------------------------------------


async def test_attempts_answer_the_request_and_response_headers_as_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    event_id = await add_event(db)
    body = request_body({"method": "POST", "body": PAYLOAD})
    sent = sent_request(
        "POST",
        "https://user:pw@example.com/hook?x=1",
        [("Authorization", "Bearer secret-value"), ("webhook-id", event_id)],
        body,
    )
    answer = {"Content-Type": "text/plain", "Set-Cookie": MASK}
    async with db.transaction() as tx:
        stored = await deliveries.record_attempts(
            tx, [_attempt(event_id, 1, request=sent, response_headers=answer)], datetime.now(UTC)
        )
    assert stored == [True]

    response = await client.get(f"{EVENTS}/{event_id}/attempts")
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["request"] == {
        "method": "POST",
        "url": "https://user:***@example.com/hook?x=***",
        "headers": {"Authorization": MASK, "webhook-id": event_id},
        "body_sha256": hashlib.sha256(body or b"").hexdigest(),
    }
    assert item["response_headers"] == answer
    assert "secret-value" not in response.text and ":pw@" not in response.text


async def test_attempts_recorded_under_a_narrower_rule_are_answered_masked(
    client: httpx.AsyncClient, db: Database
) -> None:
    # As an attempt recorded before the rule covered these names and query values was kept.
    event_id = await add_event(db)
    raw = {
        "method": "POST",
        "url": "https://example.com/hook?token=abc",
        "headers": {"X-Auth": "a-credential", "X-Tenant": "acme", "webhook-signature": "v1,s"},
        "body_sha256": None,
    }
    answer = {"X-Session": "sess-1", "Content-Type": "text/plain"}
    async with db.transaction() as tx:
        await deliveries.record_attempts(
            tx, [_attempt(event_id, 1, request=raw, response_headers=answer)], datetime.now(UTC)
        )
    response = await client.get(f"{EVENTS}/{event_id}/attempts")
    [item] = response.json()["items"]
    assert item["request"]["url"] == "https://example.com/hook?token=***"
    assert item["request"]["headers"] == {
        "X-Auth": MASK,
        "X-Tenant": "acme",
        "webhook-signature": "v1,s",
    }
    assert item["response_headers"] == {"X-Session": MASK, "Content-Type": "text/plain"}
    assert "a-credential" not in response.text and "sess-1" not in response.text
    assert "abc" not in response.text


async def test_event_detail_masks_the_query_values(client: httpx.AsyncClient, db: Database) -> None:
    secret_url = "https://hooks.slack.com/services/T0/B0/SECRET?token=abc&channel=ops"
    event_id = await add_event(db, url=secret_url)
    response = await client.get(f"{EVENTS}/{event_id}")
    assert response.json()["request"]["url"] == (
        "https://hooks.slack.com/services/T0/B0/SECRET?token=***&channel=***"
    )
    assert "abc" not in response.text and "ops" not in response.text


async def test_attempts_stored_before_the_capture_answer_null(
    client: httpx.AsyncClient, db: Database
) -> None:
    event_id = await add_event(db)
    async with db.connection() as tx:  # a row as written before migration 0015
        await tx.execute(
            "INSERT INTO delivery_attempts (event_id, attempt, started_at, duration_ms,"
            " status_code, error, response_body, next_attempt_at)"
            " VALUES (%s, 1, %s, 5, 200, NULL, 'ok', NULL)",
            (event_id, datetime.now(UTC)),
        )
    [item] = (await client.get(f"{EVENTS}/{event_id}/attempts")).json()["items"]
    assert item["request"] is None
    assert item["response_headers"] is None
    assert item["response_body"] == "ok"


async def test_an_attempt_without_an_answer_has_null_response_headers(
    client: httpx.AsyncClient, db: Database
) -> None:
    event_id = await add_event(db)
    sent = sent_request("POST", "https://example.com/hook", [("webhook-id", event_id)], b"{}")
    async with db.transaction() as tx:
        await deliveries.record_attempts(
            tx, [_attempt(event_id, 1, request=sent, status_code=None)], datetime.now(UTC)
        )
    [item] = (await client.get(f"{EVENTS}/{event_id}/attempts")).json()["items"]
    assert item["response_headers"] is None
    assert item["request"]["headers"] == {"webhook-id": event_id}


async def test_event_detail_has_the_exact_body_the_worker_sends(
    client: httpx.AsyncClient, db: Database
) -> None:
    event_id = await add_event(db, url="https://u:pw@example.com/hook")
    detail = (await client.get(f"{EVENTS}/{event_id}")).json()
    sent = request_body({"method": "POST", "body": PAYLOAD})
    assert sent is not None
    assert detail["request"] == {
        "method": "POST",
        "url": "https://u:***@example.com/hook",
        "body": sent.decode(),
    }
    # Byte for byte, so its hash is the one each attempt records.
    assert (
        hashlib.sha256(detail["request"]["body"].encode()).hexdigest()
        == (sent_request("POST", "x", [], sent)["body_sha256"])
    )
    assert "Authorization" not in str(detail) and "whsec_" not in str(detail)


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("DELETE", None), ("PUT", "null")])
async def test_event_detail_body_follows_the_method(
    client: httpx.AsyncClient, db: Database, method: str, body: str | None
) -> None:
    event_id = await add_event(db, method=method, payload=None)
    detail = (await client.get(f"{EVENTS}/{event_id}")).json()
    assert detail["request"]["method"] == method
    assert detail["request"]["body"] == body


async def test_event_list_items_do_not_carry_the_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    await add_event(db)
    [item] = (await client.get(EVENTS)).json()["items"]
    assert "request" not in item


# ---- the deliverer's capture ------------------------------------------------------------


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    """An HTTP endpoint on 127.0.0.1 that answers 200 with a cookie."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok", headers={"Set-Cookie": "s=1", "X-Served-By": "here"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
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


def _job(url: str) -> dict[str, Any]:
    return {
        "event_id": new_id(datetime.now(UTC)),
        "timeout": "5s",
        "signing_secret": new_signing_secret(),
        "request": {
            "url": url,
            "method": "POST",
            "headers": {"X-Auth": "a-credential", "X-Tenant": "acme"},
            "body": {"n": 1},
        },
    }


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request record the deliverer builds, in order."""
    made: list[dict[str, Any]] = []
    real: Callable[..., dict[str, Any]] = delivery.sent_request

    def counting(*args: Any) -> dict[str, Any]:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(delivery, "sent_request", counting)
    return made


async def test_an_answered_attempt_records_only_what_the_client_sent(
    deliverer: Deliverer, endpoint: str, built: list[dict[str, Any]]
) -> None:
    result = await deliverer.send(_job(f"{endpoint}/in?token=abc"), datetime.now(UTC))
    assert result.status_code == 200
    # One record, the one kept: the headers as given to the client are never built.
    assert built == [result.request]
    assert result.request is not None
    assert result.request["url"] == f"{endpoint}/in?token=***"
    headers = result.request["headers"]
    assert headers["Host"] == endpoint.removeprefix("http://")  # the client's own
    assert (headers["X-Auth"], headers["X-Tenant"]) == (MASK, "acme")
    assert headers["webhook-signature"].startswith("v1,")
    assert result.request["body_sha256"] == hashlib.sha256(b'{"n":1}').hexdigest()
    assert result.response_headers is not None
    assert (result.response_headers["Set-Cookie"], result.response_headers["X-Served-By"]) == (
        MASK,
        "here",
    )


async def test_an_attempt_without_an_answer_records_the_headers_as_given(
    deliverer: Deliverer, built: list[dict[str, Any]]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = await deliverer.send(_job(f"http://127.0.0.1:{closed}/in?k=v"), datetime.now(UTC))
    assert result.status_code is None and result.response_headers is None
    assert built == [result.request]
    assert result.request is not None
    assert result.request["url"] == f"http://127.0.0.1:{closed}/in?k=***"
    assert "Host" not in result.request["headers"]  # given, not sent
    assert result.request["headers"]["X-Auth"] == MASK
