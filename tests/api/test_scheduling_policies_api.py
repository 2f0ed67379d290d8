"""Scheduling policies over the real API: config.misfire, misfire_grace, jitter and
auto_pause_after are validated (400 naming the field, nothing saved), kept as given, and
a trigger shows paused_reason (null unless the platform paused it; resuming clears it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from eventtrigger.store.db import Database
from tests.api._support import (
    TRIGGERS,
    assert_invalid,
    assert_nothing_written,
    create,
    trigger_body,
)

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("misfire-unknown", trigger_body("interval_scheduled", misfire="later"), "config.misfire"),
    ("misfire-not-string", trigger_body("cron_scheduled", misfire=1), "config.misfire"),
    ("grace-garbage", trigger_body("interval_scheduled", misfire_grace="soon"), "config.misfire_grace"),
    ("grace-negative", trigger_body("time_scheduled", misfire_grace=-1), "config.misfire_grace"),
    ("grace-over-1d", trigger_body("cron_scheduled", misfire_grace="2d"), "config.misfire_grace"),
    ("jitter-over-half-every", trigger_body("interval_scheduled", every="1m", jitter="31s"), "config.jitter"),
    ("jitter-over-1h-cron", trigger_body("cron_scheduled", jitter="61m"), "config.jitter"),
    ("jitter-garbage", trigger_body("interval_scheduled", jitter="x"), "config.jitter"),
    ("jitter-on-one-shot", trigger_body("time_scheduled", jitter="1s"), "config.jitter"),
    ("jitter-on-webhook", trigger_body("webhook", jitter="1s"), "config.jitter"),
    ("misfire-on-webhook", trigger_body("webhook", misfire="skip"), "config.misfire"),
    ("auto-pause-zero", trigger_body("interval_scheduled", auto_pause_after=0), "config.auto_pause_after"),
    ("auto-pause-1001", trigger_body("interval_scheduled", auto_pause_after=1001), "config.auto_pause_after"),
    ("auto-pause-string", trigger_body("cron_scheduled", auto_pause_after="3"), "config.auto_pause_after"),
    ("auto-pause-float", trigger_body("cron_scheduled", auto_pause_after=2.5), "config.auto_pause_after"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_policy_is_400_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], field: str
) -> None:
    assert_invalid(await client.post(TRIGGERS, json=body), field)
    await assert_nothing_written(db)


async def test_policies_are_kept_as_given_and_paused_reason_is_null(
    client: httpx.AsyncClient,
) -> None:
    created = await create(
        client,
        trigger_body(
            "interval_scheduled",
            every="1m",
            misfire="fire_all",
            misfire_grace=90,
            jitter="30s",  # exactly half of every
            auto_pause_after=1000,
        ),
    )
    config = created["config"]
    assert (config["misfire"], config["misfire_grace"]) == ("fire_all", "90s")
    assert (config["jitter"], config["auto_pause_after"]) == ("30s", 1000)
    assert created["paused_reason"] is None
    cron = await create(client, trigger_body("cron_scheduled", jitter="1h", misfire="skip"))
    assert cron["config"]["jitter"] == "1h"
    assert "auto_pause_after" not in cron["config"]  # absent: the default (null)
    assert cron["paused_reason"] is None


async def test_next_fire_at_is_the_nominal_time_plus_the_jitter_offset(
    client: httpx.AsyncClient,
) -> None:
    """An interval of 1h from a whole hour with 30 min of jitter: the first occurrence is
    in the first half of the next hour, and the same config saved again (a PATCH) keeps
    the same offset, since it derives from the trigger id and the nominal time."""
    start = "2026-01-01T00:00:00Z"
    created = await create(
        client, trigger_body("interval_scheduled", every="1h", start_at=start, jitter="30m")
    )
    first = created["next_fire_at"]
    assert first is not None
    minute = int(first[14:16])
    assert first[17:19].isdigit() and 0 <= minute < 30, first
    patched = await client.patch(f"{TRIGGERS}/{created['id']}", json={"config": created["config"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["next_fire_at"] == first
