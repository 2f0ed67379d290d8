"""API keys on every management endpoint; body limits, media types, unknown routes/methods."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from eventtrigger.store.db import Database
from tests.api._support import (
    TRIGGERS,
    UNKNOWN_ID,
    assert_nothing_written,
    assert_problem,
    create,
    table_counts,
    trigger_body,
)
from tests.conftest import TEST_API_KEY

LIMIT = 1024 * 1024

# (method, path, json body); "{id}" is replaced by an existing trigger's id.
MANAGEMENT = [
    ("POST", TRIGGERS, trigger_body()),
    ("GET", TRIGGERS, None),
    ("GET", TRIGGERS + "/{id}", None),
    ("PATCH", TRIGGERS + "/{id}", {"name": "hijacked"}),
    ("DELETE", TRIGGERS + "/{id}", None),
]
MANAGEMENT_IDS = [f"{m} {p}" for m, p, _ in MANAGEMENT]
BAD_CREDENTIALS = {
    "no-header": {},
    "wrong-bearer": {"Authorization": "Bearer not-the-key"},
    "bearer-key-prefix": {"Authorization": f"Bearer {TEST_API_KEY[:-1]}"},
    "bearer-key-extended": {"Authorization": f"Bearer {TEST_API_KEY}x"},
    "bearer-alone": {"Authorization": "Bearer"},
    "basic-with-key": {"Authorization": f"Basic {TEST_API_KEY}"},
    "basic-with-key-as-user": {
        "Authorization": "Basic " + base64.b64encode(f"{TEST_API_KEY}:".encode()).decode()
    },
    "token-scheme": {"Authorization": f"Token {TEST_API_KEY}"},
    "bare-key": {"Authorization": TEST_API_KEY},
    "wrong-x-api-key": {"X-API-Key": "not-the-key"},
    "empty-x-api-key": {"X-API-Key": ""},
}


async def _existing_id(client: httpx.AsyncClient) -> str:
    return str((await create(client, trigger_body("interval_scheduled", name="mine")))["id"])


# ---- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("headers", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize(("method", "path", "body"), MANAGEMENT, ids=MANAGEMENT_IDS)
async def test_management_endpoint_without_a_valid_key_is_401_problem_and_does_nothing(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    db: Database,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    trigger_id = await _existing_id(client)
    before = (await client.get(f"{TRIGGERS}/{trigger_id}")).json()
    counts = await table_counts(db)

    response = await anonymous.request(
        method, path.format(id=trigger_id), json=body, headers=headers
    )

    assert_problem(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert (await client.get(f"{TRIGGERS}/{trigger_id}")).json() == before
    assert await table_counts(db) == counts


@pytest.mark.parametrize(("method", "path", "body"), MANAGEMENT, ids=MANAGEMENT_IDS)
async def test_management_endpoint_accepts_the_key_in_x_api_key(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    trigger_id = await _existing_id(client)
    response = await anonymous.request(
        method, path.format(id=trigger_id), json=body, headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code in (200, 201, 204), response.text


async def test_bearer_scheme_is_case_insensitive(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    response = await anonymous.get(TRIGGERS, headers={"Authorization": f"bearer {TEST_API_KEY}"})
    assert response.status_code == 200


async def test_key_is_checked_before_the_trigger_is_looked_up(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await anonymous.request(method, f"{TRIGGERS}/{UNKNOWN_ID}")
        assert_problem(response, 401)
        response = await anonymous.request(method, f"{TRIGGERS}/nope")
        assert_problem(response, 401)


async def test_key_is_checked_before_the_body_is_read(
    anonymous: httpx.AsyncClient, db: Database
) -> None:
    assert_problem(
        await anonymous.post(TRIGGERS, content=b"x", headers={"content-type": "text/plain"}), 401
    )
    assert_problem(
        await anonymous.post(TRIGGERS, content=b"{", headers={"content-type": "application/json"}),
        401,
    )
    assert_problem(
        await anonymous.post(
            TRIGGERS, content=b" " * (LIMIT + 1), headers={"content-type": "application/json"}
        ),
        401,
    )
    await assert_nothing_written(db)


@pytest.mark.parametrize("path", ["/health", "/health/live", "/metrics", "/openapi.json", "/docs"])
async def test_operations_endpoint_needs_no_key(anonymous: httpx.AsyncClient, path: str) -> None:
    response = await anonymous.get(path)
    assert response.status_code == 200, response.text


# ---- body size ------------------------------------------------------------------------


def _padded_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (its name is far too long)."""
    skeleton = orjson.dumps(trigger_body(name=""))
    pad = size - len(skeleton)
    assert pad > 0
    body = orjson.dumps(trigger_body(name="x" * pad))
    assert len(body) == size
    return body


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_body_over_1_mib_with_content_length_is_413_problem(
    client: httpx.AsyncClient, db: Database, method: str
) -> None:
    trigger_id = await _existing_id(client)
    before = (await client.get(f"{TRIGGERS}/{trigger_id}")).json()
    path = TRIGGERS if method == "POST" else f"{TRIGGERS}/{trigger_id}"
    response = await client.request(
        method, path, content=_padded_body(LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert_problem(response, 413)
    assert (await client.get(f"{TRIGGERS}/{trigger_id}")).json() == before
    assert (await table_counts(db))["triggers"] == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_body_over_1_mib_chunked_without_content_length_is_413_problem(
    client: httpx.AsyncClient, db: Database, method: str
) -> None:
    trigger_id = await _existing_id(client)
    path = TRIGGERS if method == "POST" else f"{TRIGGERS}/{trigger_id}"
    payload = _padded_body(LIMIT + 64 * 1024)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    response = await client.request(
        method, path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    assert (await table_counts(db))["triggers"] == 1


async def test_body_of_exactly_1_mib_is_read_and_validated(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(
        TRIGGERS, content=_padded_body(LIMIT), headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 400)  # read in full: the name is too long, not 413
    assert {e["field"] for e in problem["errors"]} == {"name"}
    await assert_nothing_written(db)


# ---- media types and JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "", "json"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_body_not_declared_json_is_415_problem(
    client: httpx.AsyncClient, db: Database, method: str, content_type: str
) -> None:
    trigger_id = await _existing_id(client)
    before = (await client.get(f"{TRIGGERS}/{trigger_id}")).json()
    path = TRIGGERS if method == "POST" else f"{TRIGGERS}/{trigger_id}"
    body = orjson.dumps(trigger_body() if method == "POST" else {"name": "new"})
    headers = {"content-type": content_type} if content_type else {}
    response = await client.request(method, path, content=body, headers=headers)
    assert_problem(response, 415)
    assert (await client.get(f"{TRIGGERS}/{trigger_id}")).json() == before
    assert (await table_counts(db))["triggers"] == 1


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"],
)
async def test_json_media_type_variants_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post(
        TRIGGERS, content=orjson.dumps(trigger_body()), headers={"content-type": content_type}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "raw",
    [
        # broken JSON declared as JSON
        b"{", b"", b"{'name': 'x'}", b'{"name": "x",}', b"\xff\xfe", b'{"a": NaN}',
        # valid JSON that is not an object
        b"[]", b'"x"', b"null", b"1", b"true", b'[{"name": "t"}]',
    ],
)  # fmt: skip
@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_body_that_is_not_a_json_object_is_400_problem_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, method: str, raw: bytes
) -> None:
    trigger_id = await _existing_id(client)
    before = (await client.get(f"{TRIGGERS}/{trigger_id}")).json()
    path = TRIGGERS if method == "POST" else f"{TRIGGERS}/{trigger_id}"
    response = await client.request(
        method, path, content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400)
    assert (await client.get(f"{TRIGGERS}/{trigger_id}")).json() == before
    assert (await table_counts(db))["triggers"] == 1


# ---- routes and methods ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v2/triggers", f"{TRIGGERS}/{UNKNOWN_ID}/extra", "/api"]
)
async def test_unknown_route_is_404_problem(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, path: str
) -> None:
    assert_problem(await client.get(path), 404)
    assert_problem(await anonymous.post(path, json={}), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", TRIGGERS),
        ("DELETE", TRIGGERS),
        ("PATCH", TRIGGERS),
        ("POST", f"{TRIGGERS}/{{id}}"),
        ("PUT", f"{TRIGGERS}/{{id}}"),
        ("POST", "/health"),
        ("DELETE", "/health/live"),
        ("POST", "/metrics"),
        ("POST", "/openapi.json"),
    ],
)
async def test_wrong_method_is_405_problem_and_does_nothing(
    client: httpx.AsyncClient, db: Database, method: str, path: str
) -> None:
    trigger_id = await _existing_id(client)
    before = (await client.get(f"{TRIGGERS}/{trigger_id}")).json()
    response = await client.request(method, path.format(id=trigger_id), json=trigger_body())
    assert_problem(response, 405)
    assert (await client.get(f"{TRIGGERS}/{trigger_id}")).json() == before
    assert (await table_counts(db))["triggers"] == 1


@pytest.mark.parametrize(
    ("path", "allowed"),
    [(TRIGGERS, {"GET", "POST"}), (f"{TRIGGERS}/{UNKNOWN_ID}", {"GET", "PATCH", "DELETE"})],
)
async def test_405_allow_header_lists_every_method_of_the_resource(
    client: httpx.AsyncClient, path: str, allowed: set[str]
) -> None:
    response = await client.put(path, json={})
    assert_problem(response, 405)
    listed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert allowed <= listed, f"Allow: {response.headers.get('allow')!r}"
