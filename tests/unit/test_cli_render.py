"""The CLI's tables and detail views: aligned columns, local times, human durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from eventtrigger_client import render

NOW = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1), "CET")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0094, "9ms"),
        (0.35, "350ms"),
        (4.24, "4.2s"),
        (4.0, "4s"),
        (42, "42s"),
        (270, "4m 30s"),
        (300, "5m"),
        (7500, "2h 5m"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h"),
        (-90, "1m 30s"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert render.human_duration(seconds) == text


def test_times_are_shown_in_the_given_zone_with_a_relative_part() -> None:
    assert render.local_time("2026-12-01T15:04:05Z", UTC) == "2026-12-01 15:04:05"
    assert render.local_time("2026-12-01T15:04:05.5+00:00", PARIS) == "2026-12-01 16:04:05"
    assert render.local_time(None, UTC) == "-"
    assert render.relative("2026-12-01T15:04:30Z", NOW) == "in 4m 30s"
    assert render.relative("2026-12-01T14:57:00Z", NOW) == "3m ago"
    assert render.relative("2026-12-01T15:00:00.2Z", NOW) == "now"
    assert render.when("2026-12-01T15:00:42Z", NOW, PARIS) == "2026-12-01 16:00:42 (in 42s)"
    assert render.zone_name(PARIS, NOW) == "CET"


def test_table_aligns_columns_without_trailing_blanks() -> None:
    text = render.table(["A", "LONGER"], [["xyz", "1"], ["q", ""]])
    assert text.splitlines() == ["A    LONGER", "xyz  1", "q"]


def test_triggers_table() -> None:
    triggers: list[dict[str, Any]] = [
        {
            "id": "01AAA",
            "name": "tick",
            "type": "cron_scheduled",
            "status": "active",
            "config": {"cron": "*/10 * * * * *", "timezone": "Europe/Paris"},
            "next_fire_at": "2026-12-01T15:00:10Z",
        },
        {
            "id": "01BBB",
            "name": "a name\nthat goes on " + "and on " * 10,
            "type": "webhook",
            "status": "paused",
            "config": {},
        },
        {
            "id": "01CCC",
            "name": "once",
            "type": "time_scheduled",
            "status": "completed",
            "config": {"run_at": "2026-12-01T14:00:00Z"},
            "next_fire_at": None,
        },
        {"id": "01DDD", "name": "n", "type": "interval_scheduled", "status": "active",
         "config": {"every": "5m"}, "next_fire_at": "2026-12-01T15:05:00Z"},
    ]  # fmt: skip
    lines = render.triggers_table(triggers, NOW, UTC).splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE", "STATUS", "SCHEDULE", "NEXT", "FIRE", "(UTC)"]
    assert lines[1].split("  ")[0] == "01AAA"
    assert "cron */10 * * * * * Europe/Paris" in lines[1]
    assert lines[1].endswith("2026-12-01 15:00:10 (in 10s)")
    # The long, multi-line name is cut to one line of at most NAME_WIDTH characters.
    assert "a name that goes on and on" in lines[2]
    assert "…" in lines[2]
    assert "\n" not in lines[2]
    assert "at 2026-12-01 14:00:00" in lines[3]
    assert "every 5m" in lines[4]
    # Every column starts at the same offset on every line.
    status_at = lines[0].index("STATUS")
    assert [line[status_at:].split()[0] for line in lines[1:]] == [
        "active",
        "paused",
        "completed",
        "active",
    ]
    assert render.triggers_table([], NOW, UTC) == "No triggers."


def test_events_table_and_latency() -> None:
    events: list[dict[str, Any]] = [
        {
            "id": "01EEE",
            "trigger_id": "01AAA",
            "source": "scheduled",
            "is_test_run": False,
            "status": "success",
            "attempts": 2,
            "last_status_code": 200,
            "scheduled_at": "2026-12-01T14:58:00Z",
            "fired_at": "2026-12-01T14:58:00.010Z",
            "delivered_at": "2026-12-01T14:58:02.510Z",
        },
        {
            "id": "01FFF",
            "trigger_id": None,
            "source": "api",
            "is_test_run": True,
            "status": "retrying",
            "attempts": 1,
            "last_status_code": None,
            "scheduled_at": "2026-12-01T14:59:00Z",
            "fired_at": "2026-12-01T14:59:00Z",
            "delivered_at": None,
        },
    ]
    lines = render.events_table(events, NOW, UTC).splitlines()
    assert lines[0].split()[:6] == ["ID", "TRIGGER", "SOURCE", "STATUS", "ATTEMPTS", "CODE"]
    assert lines[1].split() == [
        "01EEE", "01AAA", "scheduled", "success", "2", "200",
        "2026-12-01", "14:58:00", "(2m", "ago)", "2.5s",
    ]  # fmt: skip
    assert lines[2].split() == [
        "01FFF", "-", "api", "(test)", "retrying", "1", "-",
        "2026-12-01", "14:59:00", "(1m", "ago)", "-",
    ]  # fmt: skip
    assert render.events_table([], NOW, UTC) == "No events."


def test_detail_views_list_fields_then_json() -> None:
    trigger = {
        "id": "01AAA",
        "name": "tick",
        "type": "interval_scheduled",
        "status": "paused",
        "paused_reason": "5 consecutive failures",
        "config": {"every": "5m", "payload": {"a": 1}},
        "signing_secret": "whsec_x",
        "next_fire_at": None,
        "created_at": "2026-12-01T14:00:00Z",
        "updated_at": "2026-12-01T14:30:00Z",
    }
    text = render.trigger_detail(trigger, NOW, UTC)
    assert "paused reason:  5 consecutive failures" in text
    assert "next fire:      -" in text
    assert "created:        2026-12-01 14:00:00 (1h ago)" in text
    assert text.endswith(
        'config:\n  {\n    "every": "5m",\n    "payload": {\n      "a": 1\n    }\n  }'
    )

    event = {"id": "01EEE", "trigger_id": "01AAA", "trigger_type": "webhook",
             "source": "replay", "replay_of": "01DDD", "is_test_run": False,
             "status": "failure", "attempts": 5, "last_status_code": 503,
             "last_error": "HTTP 503", "payload": None}  # fmt: skip
    text = render.event_detail(event, NOW, UTC)
    assert "trigger:          01AAA (webhook)" in text
    assert "replay of:        01DDD" in text
    assert "last error:       HTTP 503" in text
    assert "delivered:        -" in text
    assert text.endswith("payload:\n  null")
