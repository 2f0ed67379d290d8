"""Odd inputs found in review: each must be a clear 4xx, never a 500."""

from __future__ import annotations

import base64

import httpx
import pytest

from eventtrigger.domain.jobs import MAX_JOB_BYTES


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/triggers?limit=%C2%B2", "limit"),
        ("/api/v1/events?limit=%C2%B2", "limit"),
        ("/api/v1/events?since=0001-01-01T00:00:00%2B01:00", "since"),
        ("/api/v1/events?until=0001-01-01T00:00:00%2B01:00", "until"),
    ],
)
async def test_odd_query_values_are_a_400_naming_the_parameter(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    answer = await client.get(path)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["field"] == field


async def test_a_cursor_with_an_out_of_range_time_is_a_400(client: httpx.AsyncClient) -> None:
    raw = "0001-01-01T00:00:00+01:00|01M8EB65ENESE1SX21MRKX0J32"
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    answer = await client.get(f"/api/v1/triggers?cursor={cursor}")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "cursor"


async def test_an_endpoint_host_that_cannot_be_looked_up_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/api/v1/triggers",
        json={"name": "n", "type": "webhook",
              "config": {"endpoint": "http://a..example.com/x", "schema": {}}},
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "config.endpoint"


async def test_a_payload_too_large_for_one_job_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    big = "x" * MAX_JOB_BYTES
    answer = await client.post(
        "/api/v1/triggers",
        json={"name": "n", "type": "time_scheduled",
              "config": {"endpoint": "https://example.com/x", "run_in": "1h", "payload": big}},
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "config.payload"
    assert (await client.get("/api/v1/triggers")).json()["items"] == []

    hook = await client.post(
        "/api/v1/triggers",
        json={"name": "h", "type": "webhook",
              "config": {"endpoint": "https://example.com/x", "schema": {}}},
    )  # fmt: skip
    async with httpx.AsyncClient() as anonymous:
        fired = await anonymous.post(hook.json()["webhook_url"], json={"blob": big[:-100]})
    assert fired.status_code == 413
    assert fired.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/events")).json()["items"] == []
