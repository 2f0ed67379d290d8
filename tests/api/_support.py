"""Helpers shared by the API tests: request bodies, problem+json checks, database reads."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from eventtrigger.store.db import Database

TRIGGERS = "/api/v1/triggers"
ENDPOINT = "https://example.com/hook"
ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
# A well-formed id (ULID shape) that is never created by the tests.
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
# Ids that cannot exist, whatever their shape (each is a single, already-encoded path segment).
ODD_IDS = [
    "nope",
    "..%2Fx",
    "x" * 300,
    "01ARZ3NDEKTSV4RRFFQ69G5FA",  # 25 characters
    "01ARZ3NDEKTSV4RRFFQ69G5FAVX",  # 27 characters
    "01ARZ3NDEKTSV4RRFFQ69G5FAU",  # U is not Crockford base32
    "%27%20OR%201%3D1%20--",  # ' OR 1=1 --
    "%00",
    "%F0%9F%98%80",  # an emoji
]
DEFAULT_RETRY = {"max_attempts": 5, "initial_delay": "2s", "max_delay": "5m"}
COMMON_DEFAULTS = {"method": "POST", "headers": {}, "timeout": "10s", "retry": DEFAULT_RETRY}

VALID_CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {"endpoint": ENDPOINT, "schema": {"type": "object"}},
    "time_scheduled": {"endpoint": ENDPOINT, "run_in": "1h"},
    "cron_scheduled": {"endpoint": ENDPOINT, "cron": "*/5 * * * *"},
    "interval_scheduled": {"endpoint": ENDPOINT, "every": "1m"},
}


def trigger_body(
    kind: str = "webhook", name: str = "t", status: str | None = None, **config: Any
) -> dict[str, Any]:
    """A valid create body of `kind`; keyword arguments replace config fields (None drops)."""
    cfg = copy.deepcopy(VALID_CONFIGS[kind])
    for key, value in config.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    body: dict[str, Any] = {"name": name, "type": kind, "config": cfg}
    if status is not None:
        body["status"] = status
    return body


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(TRIGGERS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from a response: must carry `Z` (UTC, as the API normalises)."""
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    return parsed.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """`response` is an RFC 9457 problem of `status`; its body."""
    assert response.status_code == status, (response.status_code, response.text)
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/problem+json", content_type
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    if "errors" in body:
        assert isinstance(body["errors"], list)
        for error in body["errors"]:
            assert set(error) == {"field", "message"}, error
            assert isinstance(error["field"], str) and isinstance(error["message"], str)
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


def assert_invalid(response: httpx.Response, *fields: str | tuple[str, ...]) -> dict[str, Any]:
    """A 400 problem whose `errors` name every field in `fields` (a tuple: any one of them)."""
    body = assert_problem(response, 400)
    found = error_fields(body)
    assert found, body
    for want in fields:
        options = want if isinstance(want, tuple) else (want,)
        assert found & set(options), f"expected an error on {options}, got {body['errors']}"
    return body


async def table_counts(db: Database) -> dict[str, int]:
    async with db.connection() as tx:
        counts = {}
        for table in ("triggers", "trigger_schedules"):
            row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
            assert row is not None
            counts[table] = int(row["n"])
    return counts


async def assert_nothing_written(db: Database) -> None:
    assert await table_counts(db) == {"triggers": 0, "trigger_schedules": 0}


async def occurrences(db: Database, trigger_id: str) -> list[tuple[datetime, str]]:
    """(fire_at, status) of every trigger_schedules row of the trigger, oldest first."""
    async with db.connection() as tx:
        rows = await tx.fetch_all(
            "SELECT fire_at, status FROM trigger_schedules WHERE trigger_id = %s "
            "ORDER BY fire_at, id",
            (trigger_id,),
        )
    return [(r["fire_at"].replace(tzinfo=UTC), r["status"]) for r in rows]


async def pending(db: Database, trigger_id: str) -> list[datetime]:
    return [at for at, status in await occurrences(db, trigger_id) if status == "pending"]


def next_on_grid(anchor: datetime, every: timedelta, after: datetime) -> datetime:
    """The first anchor + k*every (k >= 0) strictly after `after`."""
    if anchor > after:
        return anchor
    steps = (after - anchor) // every + 1
    return anchor + steps * every
