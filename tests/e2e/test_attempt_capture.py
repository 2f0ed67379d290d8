"""What each attempt sent and got back, end to end: a real process delivers to a receiver
that answers with headers of its own; the attempt history shows the request's headers as
the receiver got them (webhook-id, the signature, the trigger's headers, the sensitive
ones masked), the URL with its query values masked, the response's headers (Set-Cookie
masked), and the event detail the exact body the receiver got."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable

import httpx

from eventtrigger.store.db import Database
from tests.e2e.conftest import (
    Sink,
    create_trigger,
    fire_webhook,
    signature_for,
    wait_for_event,
)
from tests.process import EventtriggerProcess

# Keys in an order orjson keeps, unicode and a float, so "the exact text" means something.
PAYLOAD = {"zeta": 1, "alpha": [1.5, "é", None], "nested": {"b": True, "a": "x"}}
ANSWER_HEADERS = {
    "X-Receiver": "sink-7",
    "Set-Cookie": "session=s3cr3t; HttpOnly",
    "X-Request-Token": "tok-123",
    "Retry-After": "1",
}


async def test_attempts_show_request_and_response_headers_and_the_exact_body(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    sink: Sink,
    db: Database,
) -> None:
    sink.respond("/capture", (503, ANSWER_HEADERS, 0.0), (200, {"X-Receiver": "sink-7"}, 0.0))
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": sink.url("/capture?from=test&token=query-secret-7"),
                "schema": {"type": "object"},
                "headers": {
                    "Authorization": "Bearer receiver-credential",
                    "X-Tenant": "acme",
                    "X-Signing-Key": "hidden-value",
                    "X-Auth": "auth-value-7",
                    "X-Hub-Signature": "sha256=hub-value-7",
                },
                "retry": {"max_attempts": 3, "initial_delay": "200ms", "max_delay": "1s"},
            },
        )
        event_id = await fire_webhook(trigger["webhook_url"], PAYLOAD)
        await wait_for_event(db, event_id, "success")
        attempts = (await client.get(f"/api/v1/events/{event_id}/attempts")).json()["items"]
        detail = (await client.get(f"/api/v1/events/{event_id}")).json()

    received = sink.at("/capture")
    assert len(received) == 2 and len(attempts) == 2
    first, second = attempts
    for attempt, got in zip(attempts, received, strict=True):
        sent = attempt["request"]
        assert sent["method"] == "POST"
        assert sent["url"] == sink.url("/capture?from=***&token=***")
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        # Exactly what the receiver got, but for the masked values.
        assert headers["webhook-id"] == got.headers["webhook-id"] == event_id
        assert headers["webhook-timestamp"] == got.headers["webhook-timestamp"]
        assert headers["webhook-signature"] == got.headers["webhook-signature"]
        assert got.headers["webhook-signature"] == signature_for(trigger["signing_secret"], got)
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("eventtrigger/")
        assert headers["x-tenant"] == "acme"
        assert headers["authorization"] == "***"
        assert got.headers["Authorization"] == "Bearer receiver-credential"
        assert headers["x-signing-key"] == "***"
        assert (headers["x-auth"], headers["x-hub-signature"]) == ("***", "***")
        assert got.headers["X-Auth"] == "auth-value-7"
        for secret in ("receiver-credential", "hidden-value", "auth-value", "hub-value"):
            assert secret not in str(attempt)
        assert "query-secret" not in str(attempt)
        # The client's own headers are there too (it sent them).
        assert headers["host"] == got.headers["Host"]
        assert headers["content-length"] == str(len(got.body))
        # The body is kept once per event: the detail's text is byte for byte what came.
        assert sent["body_sha256"] == hashlib.sha256(got.body).hexdigest()

    assert detail["request"] == {
        "method": "POST",
        "url": sink.url("/capture?from=***&token=***"),
        "body": received[0].body.decode(),
    }
    assert received[0].body == received[1].body

    answered = first["response_headers"]
    assert answered["X-Receiver"] == "sink-7"
    assert answered["Set-Cookie"] == "***"
    assert answered["X-Request-Token"] == "***"
    assert answered["Retry-After"] == "1"
    assert answered["Content-Type"].startswith("text/plain")
    assert "s3cr3t" not in str(first)
    assert second["response_headers"]["X-Receiver"] == "sink-7"
    assert [first["status_code"], second["status_code"]] == [503, 200]


async def test_no_answer_keeps_the_request_and_no_response_headers(
    launch: Callable[..., EventtriggerProcess],
    api: Callable[[EventtriggerProcess], httpx.AsyncClient],
    db: Database,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    proc = launch()
    async with api(proc) as client:
        trigger = await create_trigger(
            client,
            "webhook",
            {
                "endpoint": f"http://127.0.0.1:{closed}/gone",
                "method": "PUT",
                "schema": {"type": "object"},
                "retry": {"max_attempts": 1},
            },
        )
        event_id = await fire_webhook(trigger["webhook_url"], {"n": 1})
        await wait_for_event(db, event_id, "failure")
        [attempt] = (await client.get(f"/api/v1/events/{event_id}/attempts")).json()["items"]
        detail = (await client.get(f"/api/v1/events/{event_id}")).json()

    assert attempt["response_headers"] is None
    sent = attempt["request"]
    assert sent["method"] == "PUT"
    assert sent["url"] == f"http://127.0.0.1:{closed}/gone"
    assert sent["headers"]["webhook-id"] == event_id
    assert sent["headers"]["webhook-signature"].startswith("v1,")
    assert detail["request"]["body"] == '{"n":1}'
    assert sent["body_sha256"] == hashlib.sha256(b'{"n":1}').hexdigest()
