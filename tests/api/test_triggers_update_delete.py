"""PATCH /api/v1/triggers/{id} (rename, pause, resume, config edit) and DELETE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.api._support import (
    ENDPOINT,
    ODD_IDS,
    TRIGGERS,
    UNKNOWN_ID,
    assert_invalid,
    assert_problem,
    create,
    next_on_grid,
    occurrences,
    parse_time,
    pending,
    table_counts,
    trigger_body,
)

ANCHOR = "2020-01-01T00:00:00.250Z"  # a past interval anchor with a sub-second phase
ANCHOR_AT = datetime(2020, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)


async def _patch(client: httpx.AsyncClient, trigger_id: str, body: Any) -> dict[str, Any]:
    response = await client.patch(f"{TRIGGERS}/{trigger_id}", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    patched: dict[str, Any] = response.json()
    got = await client.get(f"{TRIGGERS}/{trigger_id}")
    assert got.json() == patched, "GET disagrees with the PATCH response"
    return patched


async def _state(client: httpx.AsyncClient, db: Database, trigger_id: str) -> Any:
    got = await client.get(f"{TRIGGERS}/{trigger_id}")
    return got.json(), await occurrences(db, trigger_id), await table_counts(db)


# ---- rename ---------------------------------------------------------------------------


async def test_patch_name_renames_and_changes_nothing_else(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", name="before"))
    rows_before = await occurrences(db, created["id"])

    patched = await _patch(client, created["id"], {"name": "after"})

    assert patched["name"] == "after"
    assert parse_time(patched["updated_at"]) >= parse_time(created["updated_at"])
    unchanged = {k: v for k, v in patched.items() if k not in ("name", "updated_at")}
    assert unchanged == {k: v for k, v in created.items() if k not in ("name", "updated_at")}
    assert await occurrences(db, created["id"]) == rows_before


async def test_patch_name_and_status_together_apply_both(client: httpx.AsyncClient) -> None:
    created = await create(client, trigger_body("webhook"))
    patched = await _patch(client, created["id"], {"name": "renamed", "status": "paused"})
    assert (patched["name"], patched["status"]) == ("renamed", "paused")
    assert patched["webhook_url"] == created["webhook_url"]
    assert patched["signing_secret"] == created["signing_secret"]


# ---- pause and resume ---------------------------------------------------------------


async def test_patch_pause_scheduled_trigger_clears_next_fire_and_cancels_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", every="1h"))
    fire_at = parse_time(created["next_fire_at"])

    patched = await _patch(client, created["id"], {"status": "paused"})

    assert patched["status"] == "paused"
    assert patched["next_fire_at"] is None
    assert patched["config"] == created["config"]
    assert await occurrences(db, created["id"]) == [(fire_at, "cancelled")]


async def test_patch_pause_webhook_trigger_sets_paused(client: httpx.AsyncClient) -> None:
    created = await create(client, trigger_body("webhook"))
    patched = await _patch(client, created["id"], {"status": "paused"})
    assert patched["status"] == "paused"
    assert "next_fire_at" not in patched


async def test_patch_pause_twice_keeps_it_paused(client: httpx.AsyncClient, db: Database) -> None:
    created = await create(client, trigger_body("cron_scheduled"))
    await _patch(client, created["id"], {"status": "paused"})
    again = await _patch(client, created["id"], {"status": "paused"})
    assert again["status"] == "paused"
    assert await pending(db, created["id"]) == []


async def test_patch_resume_schedules_the_next_future_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    body = trigger_body("interval_scheduled", status="paused", every="7s", start_at=ANCHOR)
    created = await create(client, body)
    assert created["next_fire_at"] is None

    resumed = await _patch(client, created["id"], {"status": "active"})

    assert resumed["status"] == "active"
    resumed_at = parse_time(resumed["updated_at"])
    next_at = parse_time(resumed["next_fire_at"])
    assert next_at == next_on_grid(ANCHOR_AT, timedelta(seconds=7), resumed_at)
    assert next_at > resumed_at
    assert await pending(db, created["id"]) == [next_at]


async def test_patch_pause_then_resume_leaves_exactly_one_pending_future_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", every="1s", start_at=ANCHOR))
    await _patch(client, created["id"], {"status": "paused"})
    resumed = await _patch(client, created["id"], {"status": "active"})

    resumed_at = parse_time(resumed["updated_at"])
    next_at = parse_time(resumed["next_fire_at"])
    assert next_at == next_on_grid(ANCHOR_AT, timedelta(seconds=1), resumed_at)
    assert await pending(db, created["id"]) == [next_at]


async def test_patch_resume_cron_fires_at_next_match_after_resume(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(
        client, trigger_body("cron_scheduled", cron="* * * * *", status="paused")
    )
    resumed = await _patch(client, created["id"], {"status": "active"})
    resumed_at = parse_time(resumed["updated_at"])
    expected = resumed_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert parse_time(resumed["next_fire_at"]) == expected
    assert await pending(db, created["id"]) == [expected]


# ---- config edits ---------------------------------------------------------------------


async def test_patch_interval_config_recomputes_next_fire_from_edit_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", every="1m"))
    old_fire = parse_time(created["next_fire_at"])
    new_config = {"endpoint": "https://example.org/new", "every": "2h", "payload": {"v": 2}}

    patched = await _patch(client, created["id"], {"config": new_config})

    edited_at = parse_time(patched["updated_at"])
    assert "version" not in patched
    assert patched["config"]["endpoint"] == "https://example.org/new"
    assert patched["config"]["every"] == "2h"
    assert patched["config"]["payload"] == {"v": 2}
    assert patched["config"]["start_at"] == patched["updated_at"]  # anchor: the edit time
    assert parse_time(patched["next_fire_at"]) == edited_at + timedelta(hours=2)
    rows = await occurrences(db, created["id"])
    assert (old_fire, "cancelled") in rows
    assert [at for at, s in rows if s == "pending"] == [edited_at + timedelta(hours=2)]


async def test_patch_cron_config_recomputes_next_fire(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("cron_scheduled", cron="0 0 1 1 *"))
    new_config = {"endpoint": ENDPOINT, "cron": "*/10 * * * * *"}
    patched = await _patch(client, created["id"], {"config": new_config})

    edited_at = parse_time(patched["updated_at"])
    floor = edited_at.replace(second=edited_at.second - edited_at.second % 10, microsecond=0)
    assert parse_time(patched["next_fire_at"]) == floor + timedelta(seconds=10)
    assert patched["config"]["timezone"] == "UTC"
    assert await pending(db, created["id"]) == [floor + timedelta(seconds=10)]


async def test_patch_time_scheduled_config_with_run_in_resolves_it_at_edit_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("time_scheduled", run_in="1h"))
    patched = await _patch(
        client, created["id"], {"config": {"endpoint": ENDPOINT, "run_in": "2h"}}
    )
    edited_at = parse_time(patched["updated_at"])
    assert "run_in" not in patched["config"]
    assert parse_time(patched["config"]["run_at"]) == edited_at + timedelta(hours=2)
    assert parse_time(patched["next_fire_at"]) == edited_at + timedelta(hours=2)
    assert await pending(db, created["id"]) == [edited_at + timedelta(hours=2)]


async def test_patch_webhook_config_replaces_it_and_keeps_url_and_secret(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, trigger_body("webhook", headers={"X-Old": "1"}))
    new_config = {"endpoint": "https://example.org/v2", "schema": {"type": "array"}}
    patched = await _patch(client, created["id"], {"config": new_config})
    assert patched["config"]["schema"] == {"type": "array"}
    assert patched["config"]["headers"] == {}  # the whole config is replaced
    assert patched["webhook_url"] == created["webhook_url"]
    assert patched["signing_secret"] == created["signing_secret"]


async def test_patch_config_of_paused_trigger_stays_paused_without_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", status="paused"))
    patched = await _patch(
        client, created["id"], {"config": {"endpoint": ENDPOINT, "every": "10m"}}
    )
    assert patched["status"] == "paused"
    assert patched["next_fire_at"] is None
    assert patched["config"]["every"] == "10m"
    assert await pending(db, created["id"]) == []


async def test_patch_with_the_same_config_keeps_the_occurrence(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("cron_scheduled", cron="0 * * * *"))
    rows = await occurrences(db, created["id"])
    patched = await _patch(client, created["id"], {"config": created["config"]})
    assert patched["next_fire_at"] == created["next_fire_at"]
    assert await occurrences(db, created["id"]) == rows


PATCH_CONFIG_ERRORS = [
    ("bad-cron", "cron_scheduled", {"endpoint": ENDPOINT, "cron": "99 * * * *"}, "config.cron"),
    (
        "bad-timezone",
        "cron_scheduled",
        {"endpoint": ENDPOINT, "cron": "* * * * *", "timezone": "Nowhere/Else"},
        "config.timezone",
    ),
    ("missing-endpoint", "interval_scheduled", {"every": "1m"}, "config.endpoint"),
    (
        "every-too-short",
        "interval_scheduled",
        {"endpoint": ENDPOINT, "every": "1ms"},
        "config.every",
    ),
    (
        "other-types-field",
        "interval_scheduled",
        {"endpoint": ENDPOINT, "cron": "* * * * *"},
        "config.cron",
    ),
    ("ssrf", "webhook", {"endpoint": "http://localhost/", "schema": {}}, "config.endpoint"),
    ("bad-schema", "webhook", {"endpoint": ENDPOINT, "schema": {"type": 5}}, "config.schema.type"),
    (
        "run-at-past",
        "time_scheduled",
        {"endpoint": ENDPOINT, "run_at": "2001-01-01T00:00:00Z"},
        "config.run_at",
    ),
    (
        "unknown-field",
        "time_scheduled",
        {"endpoint": ENDPOINT, "run_in": "1h", "endpont": "x"},
        "config.endpont",
    ),
    ("not-an-object", "webhook", "https://example.com", "config"),
]


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [c[1:] for c in PATCH_CONFIG_ERRORS],
    ids=[c[0] for c in PATCH_CONFIG_ERRORS],
)
async def test_patch_invalid_config_is_400_on_config_path_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, kind: str, config: Any, field: str
) -> None:
    created = await create(client, trigger_body(kind))
    before = await _state(client, db, created["id"])
    response = await client.patch(f"{TRIGGERS}/{created['id']}", json={"config": config})
    assert_invalid(response, field)
    assert await _state(client, db, created["id"]) == before


PATCH_BODY_ERRORS = [
    ("unknown-field", {"nmae": "x"}, "nmae"),
    ("type-change", {"type": "webhook"}, "type"),
    ("empty-object", {}, None),
    ("status-completed", {"status": "completed"}, "status"),
    ("status-unknown", {"status": "stopped"}, "status"),
    ("name-empty", {"name": ""}, "name"),
    ("name-too-long", {"name": "n" * 201}, "name"),
    ("name-null", {"name": None}, "name"),
    ("config-null", {"config": None}, "config"),
    ("valid-name-with-unknown-field", {"name": "ok", "extra": 1}, "extra"),
]


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in PATCH_BODY_ERRORS], ids=[c[0] for c in PATCH_BODY_ERRORS]
)
async def test_patch_invalid_body_is_400_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, body: Any, field: str | None
) -> None:
    created = await create(client, trigger_body("interval_scheduled", name="keep"))
    before = await _state(client, db, created["id"])
    response = await client.patch(f"{TRIGGERS}/{created['id']}", json=body)
    if field is None:
        assert_problem(response, 400)
    else:
        assert_invalid(response, field)
    assert await _state(client, db, created["id"]) == before


async def test_patch_unknown_id_is_404_problem(client: httpx.AsyncClient, db: Database) -> None:
    assert_problem(await client.patch(f"{TRIGGERS}/{UNKNOWN_ID}", json={"name": "x"}), 404)
    assert await table_counts(db) == {"triggers": 0, "trigger_schedules": 0}


@pytest.mark.parametrize("trigger_id", ODD_IDS)
async def test_patch_id_of_any_other_shape_is_404_problem(
    client: httpx.AsyncClient, trigger_id: str
) -> None:
    assert_problem(await client.patch(f"{TRIGGERS}/{trigger_id}", json={"name": "x"}), 404)


async def test_patch_config_whose_schedule_has_ended_is_400_and_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled", status="paused"))
    past_end = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    edit = {
        "endpoint": ENDPOINT,
        "every": "1m",
        "start_at": "2020-01-01T00:00:00Z",
        "end_at": past_end,
    }
    response = await client.patch(f"{TRIGGERS}/{created['id']}", json={"config": edit})
    assert_invalid(response, ("config.end_at", "config"))
    assert (await client.get(f"{TRIGGERS}/{created['id']}")).json() == created


# ---- delete ---------------------------------------------------------------------------


async def test_delete_returns_204_then_get_is_404_and_occurrences_are_gone(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("interval_scheduled"))
    assert len(await occurrences(db, created["id"])) == 1

    response = await client.delete(f"{TRIGGERS}/{created['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"{TRIGGERS}/{created['id']}"), 404)
    assert await occurrences(db, created["id"]) == []
    assert (await client.get(TRIGGERS)).json()["items"] == []


async def test_delete_removes_cancelled_occurrences_too(
    client: httpx.AsyncClient, db: Database
) -> None:
    created = await create(client, trigger_body("cron_scheduled"))
    await _patch(client, created["id"], {"status": "paused"})
    await _patch(client, created["id"], {"status": "active"})
    assert await occurrences(db, created["id"])
    assert (await client.delete(f"{TRIGGERS}/{created['id']}")).status_code == 204
    assert await occurrences(db, created["id"]) == []


async def test_delete_twice_is_404_the_second_time(client: httpx.AsyncClient) -> None:
    created = await create(client, trigger_body("webhook"))
    assert (await client.delete(f"{TRIGGERS}/{created['id']}")).status_code == 204
    assert_problem(await client.delete(f"{TRIGGERS}/{created['id']}"), 404)


async def test_delete_leaves_other_triggers_alone(client: httpx.AsyncClient, db: Database) -> None:
    keep = await create(client, trigger_body("time_scheduled"))
    gone = await create(client, trigger_body("time_scheduled"))
    assert (await client.delete(f"{TRIGGERS}/{gone['id']}")).status_code == 204
    assert (await client.get(f"{TRIGGERS}/{keep['id']}")).json() == keep
    assert len(await pending(db, keep["id"])) == 1


async def test_delete_unknown_id_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"{TRIGGERS}/{UNKNOWN_ID}"), 404)


@pytest.mark.parametrize("trigger_id", ODD_IDS)
async def test_delete_id_of_any_other_shape_is_404_problem(
    client: httpx.AsyncClient, trigger_id: str
) -> None:
    assert_problem(await client.delete(f"{TRIGGERS}/{trigger_id}"), 404)


async def test_patch_after_delete_is_404(client: httpx.AsyncClient) -> None:
    created = await create(client, trigger_body("webhook"))
    await client.delete(f"{TRIGGERS}/{created['id']}")
    assert_problem(await client.patch(f"{TRIGGERS}/{created['id']}", json={"name": "x"}), 404)
