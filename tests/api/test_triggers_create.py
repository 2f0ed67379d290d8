"""POST /api/v1/triggers: each trigger type, the normalised response, and the rows written."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from eventtrigger.store.db import Database
from tests.api._support import (
    COMMON_DEFAULTS,
    DEFAULT_RETRY,
    ENDPOINT,
    ID_RE,
    TRIGGERS,
    create,
    iso,
    next_on_grid,
    occurrences,
    parse_time,
    table_counts,
    trigger_body,
)
from tests.process import EventtriggerProcess

BASE_KEYS = {"id", "name", "type", "status", "config", "signing_secret", "created_at", "updated_at"}


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
    """Create; the response body (after the common checks) and its created_at."""
    before = datetime.now(UTC)
    response = await client.post(TRIGGERS, json=body)
    after = datetime.now(UTC)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    created = response.json()
    assert ID_RE.match(created["id"]), created["id"]
    location = urljoin(str(client.base_url) + "/", response.headers["location"])
    assert location == f"{client.base_url}{TRIGGERS}/{created['id']}"
    assert created["name"] == body["name"]
    assert created["type"] == body["type"]
    assert created["status"] == body.get("status", "active")
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    created_at = parse_time(created["created_at"])
    assert created["updated_at"] == created["created_at"]
    assert before - timedelta(seconds=2) <= created_at <= after + timedelta(seconds=2)
    return created, created_at


async def _assert_one_pending(db: Database, created: dict[str, Any]) -> None:
    assert created["next_fire_at"] is not None
    rows = await occurrences(db, created["id"])
    assert rows == [(parse_time(created["next_fire_at"]), "pending")]


async def test_create_webhook_trigger_returns_201_with_webhook_url_and_no_schedule(
    client: httpx.AsyncClient, db: Database, server: EventtriggerProcess
) -> None:
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    created, _ = await _post(client, trigger_body("webhook", name="orders", schema=schema))

    assert set(created) == BASE_KEYS | {"webhook_url"}
    # The URL ends in a random token, not the id (contract v1.1): ids are not secrets.
    prefix = f"{server.base_url}/api/v1/webhook/"
    assert created["webhook_url"].startswith(prefix)
    assert created["id"] not in created["webhook_url"]
    assert created["config"] == {"endpoint": ENDPOINT, **COMMON_DEFAULTS, "schema": schema}
    assert await occurrences(db, created["id"]) == []
    assert await table_counts(db) == {"triggers": 1, "trigger_schedules": 0}


async def test_create_gives_every_trigger_its_own_id_and_signing_secret(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client, trigger_body("webhook"))
    second = await create(client, trigger_body("webhook"))
    assert first["id"] != second["id"]
    assert first["signing_secret"] != second["signing_secret"]


async def test_create_keeps_given_common_fields_and_fills_partial_retry_with_defaults(
    client: httpx.AsyncClient,
) -> None:
    body = trigger_body(
        "webhook",
        method="PUT",
        headers={"X-Token": "abc", "X-Empty": ""},
        timeout="2500ms",
        retry={"max_attempts": 3},
    )
    created, _ = await _post(client, body)
    config = created["config"]
    assert config["method"] == "PUT"
    assert config["headers"] == {"X-Token": "abc", "X-Empty": ""}
    assert config["timeout"] == "2500ms"
    assert config["retry"] == {**DEFAULT_RETRY, "max_attempts": 3}


async def test_create_normalises_numeric_durations_to_canonical_spelling(
    client: httpx.AsyncClient,
) -> None:
    created, _ = await _post(
        client,
        trigger_body("interval_scheduled", every=3600, timeout=30, retry={"initial_delay": "1.5s"}),
    )
    assert created["config"]["every"] == "1h"
    assert created["config"]["timeout"] == "30s"
    assert created["config"]["retry"]["initial_delay"] == "1500ms"


async def test_create_time_scheduled_with_run_at_fires_at_run_at_in_utc(
    client: httpx.AsyncClient, db: Database
) -> None:
    run_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    given = run_at.astimezone(ZoneInfo("Asia/Kolkata")).isoformat()  # "+05:30" offset
    payload = {"order": 42, "items": [1, 2]}
    body = trigger_body("time_scheduled", run_in=None, run_at=given, payload=payload)
    created, _ = await _post(client, body)

    assert set(created) == BASE_KEYS | {"next_fire_at", "paused_reason"}
    assert created["config"] == {
        "endpoint": ENDPOINT,
        **COMMON_DEFAULTS,
        "run_at": iso(run_at),
        "payload": payload,
    }
    assert parse_time(created["next_fire_at"]) == run_at
    await _assert_one_pending(db, created)


async def test_create_time_scheduled_with_run_in_resolves_run_at_from_creation_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    created, created_at = await _post(client, trigger_body("time_scheduled", run_in="90s"))

    assert "run_in" not in created["config"]
    assert parse_time(created["config"]["run_at"]) == created_at + timedelta(seconds=90)
    assert parse_time(created["next_fire_at"]) == created_at + timedelta(seconds=90)
    assert created["config"]["payload"] is None
    await _assert_one_pending(db, created)


async def test_create_time_scheduled_with_run_in_zero_fires_at_creation_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    created, created_at = await _post(client, trigger_body("time_scheduled", run_in="0s"))
    assert parse_time(created["next_fire_at"]) == created_at
    await _assert_one_pending(db, created)


async def test_create_cron_5_fields_in_a_timezone_fires_at_next_local_match(
    client: httpx.AsyncClient, db: Database
) -> None:
    zone = ZoneInfo("Asia/Kolkata")  # +05:30, no DST
    body = trigger_body("cron_scheduled", cron="0  12 * * *", timezone="Asia/Kolkata")
    created, created_at = await _post(client, body)

    assert set(created) == BASE_KEYS | {"next_fire_at", "paused_reason"}
    assert created["config"] == {
        "endpoint": ENDPOINT,
        **COMMON_DEFAULTS,
        "cron": "0 12 * * *",
        "timezone": "Asia/Kolkata",
        "payload": None,
    }
    local = created_at.astimezone(zone)
    expected = local.replace(hour=12, minute=0, second=0, microsecond=0)
    if expected <= local:
        expected += timedelta(days=1)
    assert parse_time(created["next_fire_at"]) == expected.astimezone(UTC)
    await _assert_one_pending(db, created)


async def test_create_cron_5_fields_yearly_in_tokyo_fires_next_new_year_there(
    client: httpx.AsyncClient,
) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    body = trigger_body("cron_scheduled", cron="0 0 1 1 *", timezone="Asia/Tokyo")
    created, created_at = await _post(client, body)
    expected = datetime(created_at.astimezone(zone).year + 1, 1, 1, tzinfo=zone)
    assert parse_time(created["next_fire_at"]) == expected.astimezone(UTC)


async def test_create_cron_6_fields_reads_seconds_first(
    client: httpx.AsyncClient, db: Database
) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    body = trigger_body("cron_scheduled", cron="30 0 12 * * *", timezone="Asia/Tokyo")
    created, created_at = await _post(client, body)

    local = created_at.astimezone(zone)
    expected = local.replace(hour=12, minute=0, second=30, microsecond=0)
    if expected <= local:
        expected += timedelta(days=1)
    assert parse_time(created["next_fire_at"]) == expected.astimezone(UTC)
    assert created["config"]["cron"] == "30 0 12 * * *"
    await _assert_one_pending(db, created)


async def test_create_cron_6_fields_every_10_seconds_fires_at_next_multiple_of_10s(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = trigger_body("cron_scheduled", cron="*/10 * * * * *", timezone="Europe/Berlin")
    created, created_at = await _post(client, body)
    floor = created_at.replace(second=created_at.second - created_at.second % 10, microsecond=0)
    assert parse_time(created["next_fire_at"]) == floor + timedelta(seconds=10)
    assert created["config"]["timezone"] == "Europe/Berlin"
    await _assert_one_pending(db, created)


async def test_create_cron_defaults_timezone_to_utc(client: httpx.AsyncClient) -> None:
    created, created_at = await _post(client, trigger_body("cron_scheduled", cron="0 * * * *"))
    assert created["config"]["timezone"] == "UTC"
    expected = created_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert parse_time(created["next_fire_at"]) == expected


async def test_create_cron_with_future_start_at_fires_first_at_or_after_start_at(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = trigger_body(
        "cron_scheduled",
        cron="0 * * * *",
        start_at="2031-01-01T00:30:00+01:00",
        end_at="2032-06-01T12:00:00-02:00",
    )
    created, _ = await _post(client, body)
    assert created["config"]["start_at"] == "2030-12-31T23:30:00Z"
    assert created["config"]["end_at"] == "2032-06-01T14:00:00Z"
    assert created["next_fire_at"] == "2031-01-01T00:00:00Z"
    await _assert_one_pending(db, created)


async def test_create_interval_without_start_at_fires_one_every_after_creation(
    client: httpx.AsyncClient, db: Database
) -> None:
    created, created_at = await _post(client, trigger_body("interval_scheduled", every="5m"))

    assert set(created) == BASE_KEYS | {"next_fire_at", "paused_reason"}
    assert created["config"] == {
        "endpoint": ENDPOINT,
        **COMMON_DEFAULTS,
        "every": "5m",
        "start_at": created["created_at"],
        "payload": None,
    }
    assert parse_time(created["next_fire_at"]) == created_at + timedelta(minutes=5)
    await _assert_one_pending(db, created)


async def test_create_interval_with_future_start_at_fires_at_start_at(
    client: httpx.AsyncClient, db: Database
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=250000)
    given = start.astimezone(ZoneInfo("America/New_York")).isoformat()
    body = trigger_body("interval_scheduled", every="1h", start_at=given, payload=[1, "two"])
    created, _ = await _post(client, body)

    assert created["config"]["start_at"] == iso(start)
    assert created["config"]["payload"] == [1, "two"]
    assert parse_time(created["next_fire_at"]) == start
    await _assert_one_pending(db, created)


async def test_create_interval_with_past_start_at_keeps_its_phase(
    client: httpx.AsyncClient, db: Database
) -> None:
    anchor = datetime(2020, 1, 1, 0, 0, 7, tzinfo=UTC)
    body = trigger_body("interval_scheduled", every="7m", start_at="2020-01-01T00:00:07Z")
    created, created_at = await _post(client, body)

    assert created["config"]["start_at"] == "2020-01-01T00:00:07Z"
    expected = next_on_grid(anchor, timedelta(minutes=7), created_at)
    assert parse_time(created["next_fire_at"]) == expected
    await _assert_one_pending(db, created)


async def test_create_paused_scheduled_trigger_has_no_next_fire_and_no_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    for kind in ("time_scheduled", "cron_scheduled", "interval_scheduled"):
        created, _ = await _post(client, trigger_body(kind, status="paused"))
        assert created["status"] == "paused"
        assert created["next_fire_at"] is None
        assert await occurrences(db, created["id"]) == []
    assert await table_counts(db) == {"triggers": 3, "trigger_schedules": 0}


async def test_create_paused_webhook_trigger_is_paused(client: httpx.AsyncClient) -> None:
    created, _ = await _post(client, trigger_body("webhook", status="paused"))
    assert created["status"] == "paused"
    assert "next_fire_at" not in created


async def test_create_accepts_name_of_200_characters_including_non_ascii(
    client: httpx.AsyncClient,
) -> None:
    name = "é😀" * 100
    created, _ = await _post(client, trigger_body("webhook", name=name))
    got = await client.get(f"{TRIGGERS}/{created['id']}")
    assert got.json()["name"] == name


async def test_create_then_get_returns_the_same_trigger(client: httpx.AsyncClient) -> None:
    for kind in ("webhook", "time_scheduled", "cron_scheduled", "interval_scheduled"):
        created = await create(client, trigger_body(kind))
        got = await client.get(f"{TRIGGERS}/{created['id']}")
        assert got.status_code == 200
        assert got.json() == created


async def test_create_integral_float_max_attempts_is_accepted_as_integer_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    # JSON Schema counts 5.0 as an integer, so it passes the schema; it must then work.
    response = await client.post(TRIGGERS, json=trigger_body(retry={"max_attempts": 5.0}))
    assert response.status_code == 201, response.text
    assert response.json()["config"]["retry"]["max_attempts"] == 5


def _nested(depth: int) -> Any:
    payload: Any = "leaf"
    for _ in range(depth):
        payload = {"a": payload}
    return payload


async def test_create_with_deeply_nested_payload_is_stored_or_refused_with_400(
    client: httpx.AsyncClient, db: Database
) -> None:
    payload = _nested(40)
    body = trigger_body("time_scheduled", payload=payload)
    response = await client.post(TRIGGERS, json=body)
    assert response.status_code in (201, 400), (response.status_code, response.text)
    if response.status_code == 201:
        got = await client.get(f"{TRIGGERS}/{response.json()['id']}")
        assert got.json()["config"]["payload"] == payload
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "config.payload" in {e["field"] for e in response.json()["errors"]}
        assert await table_counts(db) == {"triggers": 0, "trigger_schedules": 0}


async def test_create_that_the_server_fails_on_still_answers_problem_json(
    client: httpx.AsyncClient,
) -> None:
    # Whatever the status, an error is problem+json (contract: "Every error ... is
    # problem+json"); a nested payload like this one has made the server fail.
    response = await client.post(TRIGGERS, json=trigger_body("time_scheduled", payload=_nested(40)))
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), (
            response.status_code,
            response.headers["content-type"],
            response.text,
        )
        assert response.json()["status"] == response.status_code
